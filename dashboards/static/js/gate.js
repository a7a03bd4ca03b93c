/* Gate terminal: live access feed, doors with manual open (reason required), alerts to
   acknowledge, visitor passes with a QR code. Large targets for a touch screen. */
"use strict";
(async () => {
  const { t, tOr, api, el, formatTime, toast, errorText } = Linli;
  const PATHS = {
    access: "/api/access-events?limit=30",
    doors: "/api/devices?kind=door_lock",
    alerts: "/api/alerts?limit=200&status=open",
    ack: (id) => `/api/alerts/${id}/ack`,
    command: "/api/commands",
    passes: "/api/visitor-passes",
    qr: (id) => `/api/visitor-passes/${id}/qr.svg`,
    latest: (site, id) => "/api/telemetry/latest?" + new URLSearchParams({ site, device: id }),
  };
  /* Rules whose alerts a guard must acknowledge at the gate. */
  const GATE_RULES = new Set(["block-listed-person", "unknown-face-repeated", "door-forced", "door-held-open", "tailgating", "night-door-open"]);
  const items = (body) => (Array.isArray(body) ? body : (body && body.items) || []);

  const me = await Linli.init();
  /* Residents use this page only to invite visitors: no feed, no doors. */
  const passOnly = me.role === "resident";
  if (passOnly) {
    document.getElementById("gate-left").classList.add("hidden");
    document.getElementById("doors-panel").classList.add("hidden");
    document.querySelector(".gate-grid").style.gridTemplateColumns = "minmax(20rem, 40rem)";
  }
  const feed = [];
  const doors = new Map(); // key site/door → {site, gateway, door, open}
  const pending = new Map(); // alert id → alert

  setInterval(() => {
    document.getElementById("clock").textContent = formatTime(new Date().toISOString());
  }, 1000);

  /* ---- access feed ---- */
  function doorKey(site, door) {
    return `${site || ""}/${door}`;
  }
  function noteDoor(e) {
    if (!e.door) return;
    const key = doorKey(e.site, e.door);
    const known = doors.get(key) || { site: e.site, gateway: e.gateway, door: e.door, open: null };
    known.gateway = known.gateway || e.gateway;
    if (e.kind === "door_state") {
      const open = e.attrs && typeof e.attrs.open === "boolean" ? e.attrs.open : e.reason === "opened" || e.reason === "door_opened";
      known.open = open;
    } else if (e.kind === "forced_open" || e.kind === "held_open") {
      known.open = true;
    }
    doors.set(key, known);
  }
  function accessCard(e) {
    const name = e.person_name || (e.person_id ? e.person_id : t("gate.unknown"));
    const decision = e.decision || "none";
    const what = e.kind === "decision" ? tOr("reason." + e.reason, e.reason) : tOr("access." + e.kind, e.kind) + (e.reason ? " · " + tOr("reason." + e.reason, e.reason) : "");
    return el(
      "div",
      { class: "access", dataset: { decision, kind: e.kind, msgId: e.msg_id || "" } },
      e.thumbnail_jpeg_b64 ? el("img", { src: "data:image/jpeg;base64," + e.thumbnail_jpeg_b64, alt: name }) : el("div", { class: "noimg" }, Linli.icon("person")),
      el(
        "div",
        {},
        el("div", { class: "name" }, name),
        el("div", { class: "reason" }, `${e.door} · ${what}`),
        el("span", { class: "decision " + decision }, t("decision." + decision)),
      ),
      el("div", { class: "time" }, formatTime(e.ts, false, e.site)),
    );
  }
  function renderFeed() {
    const box = document.getElementById("feed");
    if (feed.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("gate.no_events")));
      return;
    }
    box.replaceChildren(...feed.slice(0, 30).map(accessCard));
  }
  function addAccess(e) {
    if (e.msg_id && feed.some((f) => f.msg_id === e.msg_id)) return;
    feed.unshift(e);
    feed.sort((a, b) => new Date(b.ts) - new Date(a.ts));
    feed.length = Math.min(feed.length, 100);
    noteDoor(e);
    renderFeed();
    renderDoors();
  }

  /* ---- doors and manual open ---- */
  let opening = null;
  function renderDoors() {
    const box = document.getElementById("doors");
    const list = [...doors.values()].sort((a, b) => a.door.localeCompare(b.door));
    box.replaceChildren(
      ...list.map((d) =>
        el(
          "div",
          { class: "door", dataset: { door: d.door } },
          el("div", { class: "door-name" }, d.door),
          el("div", { class: "door-state " + doorClass(d) }, doorText(d)),
          el("button", { class: "btn big", dataset: { open: d.door }, onclick: () => askOpen(d) }, t("gate.open")),
        ),
      ),
    );
  }
  function doorClass(d) {
    if (d.open === true || d.locked === false) return "open";
    if (d.open === false || d.locked === true) return "closed";
    return "";
  }
  function doorText(d) {
    const parts = [];
    if (d.open !== null && d.open !== undefined) parts.push(t(d.open ? "gate.door_open" : "gate.door_closed"));
    if (d.locked !== null && d.locked !== undefined) parts.push(t(d.locked ? "gate.door_locked" : "gate.door_unlocked"));
    return parts.length ? parts.join(" · ") : t("gate.door_unknown");
  }
  /* Lock state from each door lock's latest "locked" reading. */
  async function refreshLocks() {
    for (const d of doors.values()) {
      if (!d.site || !d.isLock) continue;
      try {
        const latest = items(await api(PATHS.latest(d.site, d.door)));
        const locked = latest.find((r) => r.metric === "locked");
        if (locked) d.locked = Boolean(locked.value);
      } catch (error) {
        console.warn("lock state", error);
      }
    }
    renderDoors();
  }
  function askOpen(d) {
    opening = d;
    document.getElementById("open-title").textContent = t("gate.open_title", { door: d.door });
    document.getElementById("open-reason").value = "";
    document.getElementById("open-error").textContent = "";
    document.getElementById("open-modal").classList.remove("hidden");
    document.getElementById("open-reason").focus();
  }
  document.getElementById("open-cancel").addEventListener("click", () => document.getElementById("open-modal").classList.add("hidden"));
  document.getElementById("open-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = document.getElementById("open-reason").value.trim();
    const error = document.getElementById("open-error");
    if (!reason) {
      error.textContent = t("gate.reason_required");
      return;
    }
    try {
      await api(PATHS.command, {
        method: "POST",
        json: { site: opening.site, gateway: opening.gateway, target: opening.door, name: "door.open", reason },
      });
      document.getElementById("open-modal").classList.add("hidden");
      toast(t("gate.open_sent", { door: opening.door }), "ok");
      setTimeout(refreshLocks, 3000);
    } catch (err) {
      error.textContent = errorText(err);
    }
  });

  /* ---- alerts that need acknowledgement ---- */
  function renderAcks() {
    const box = document.getElementById("ack-list");
    const list = [...pending.values()].filter((a) => a.status === "open").sort((a, b) => b.id - a.id);
    if (list.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("gate.no_alerts")));
      return;
    }
    box.replaceChildren(
      ...list.map((a) =>
        el(
          "div",
          { class: "ack-item", dataset: { alertId: a.id } },
          el("div", {}, el("span", { class: "badge sev-" + a.severity }, t("severity." + a.severity)), " ", el("strong", {}, Linli.state.locale === "en" ? a.title_en : a.title_zh), el("div", { class: "muted" }, `${a.subject} · ${formatTime(a.raised_at, false)}`)),
          el("button", { class: "btn big", dataset: { ack: a.id }, onclick: () => acknowledge(a.id) }, t("action.acknowledge")),
        ),
      ),
    );
  }
  async function acknowledge(id) {
    try {
      const updated = await api(PATHS.ack(id), { method: "POST", json: {} });
      pending.set(id, updated && updated.id ? updated : Object.assign(pending.get(id), { status: "acknowledged" }));
      renderAcks();
    } catch (error) {
      toast(errorText(error), "error");
    }
  }
  function noteAlert(a) {
    if (!GATE_RULES.has(a.rule_id)) return;
    pending.set(a.id, a);
    renderAcks();
  }

  /* ---- visitor passes ---- */
  document.getElementById("pass-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const hours = Number(document.getElementById("pass-hours").value);
    const body = {
      visitor_name: document.getElementById("pass-name").value.trim(),
      host: document.getElementById("pass-host").value.trim() || null,
      valid_until: new Date(Date.now() + hours * 3600 * 1000).toISOString(),
      max_uses: Number(document.getElementById("pass-uses").value),
    };
    const box = document.getElementById("pass-result");
    try {
      const issued = await api(PATHS.passes, { method: "POST", json: body });
      loadPasses();
      box.replaceChildren(
        el("p", { id: "pass-summary" }, t("gate.pass_issued", { name: issued.visitor_name, until: formatTime(issued.valid_until), uses: issued.max_uses })),
        el("div", { class: "qr" }, el("img", { id: "pass-qr", src: PATHS.qr(issued.id), alt: issued.qr_text })),
      );
    } catch (error) {
      box.replaceChildren(el("p", { class: "error" }, errorText(error)));
    }
  });

  /* Staff see the active passes with their uses (the gateways report each use). */
  async function loadPasses() {
    if (passOnly) return;
    const list = document.getElementById("pass-list");
    try {
      list.replaceChildren(...items(await api(PATHS.passes)).map((p) =>
        el("li", { "data-pass": String(p.id), "data-state": p.state },
          `${p.visitor_name} · ${t("gate.pass_used", { uses: p.uses, max: p.max_uses })} · ${t(p.state === "active" ? "gate.pass_active" : "reason." + p.state)}`)));
    } catch (error) {
      console.warn("passes", error);
    }
  }

  /* ---- initial load and live stream ---- */
  if (passOnly) {
    document.body.dataset.ready = "1";
    return;
  }
  try {
    for (const d of items(await api(PATHS.doors))) {
      doors.set(doorKey(d.site, d.id), { site: d.site, gateway: d.gateway, door: d.id, open: null, locked: null, isLock: true });
    }
  } catch (error) {
    console.warn("doors", error);
  }
  try {
    const events = items(await api(PATHS.access));
    for (const e of events.slice().reverse()) addAccess(e);
  } catch (error) {
    toast(errorText(error), "error");
  }
  try {
    for (const a of items(await api(PATHS.alerts))) noteAlert(a);
  } catch (error) {
    console.warn("alerts", error);
  }
  renderFeed();
  renderDoors();
  renderAcks();
  await refreshLocks();
  setInterval(refreshLocks, 15000);
  await loadPasses();
  Linli.stream((event) => {
    if (event.type === "access" && event.event) {
      addAccess(Object.assign({ site: event.site, gateway: event.gateway }, event.event));
      // A pass was used: the cloud records it right after storing the event.
      if (event.event.attrs && event.event.attrs.pass_id) setTimeout(loadPasses, 1500);
    }
    else if (event.type === "alert" && event.alert) noteAlert(event.alert);
  });
  document.body.dataset.ready = "1";
})();
