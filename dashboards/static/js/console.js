/* Manager console: live alert board, alert detail and workflow, site map, devices, gateways, audit. */
"use strict";
(async () => {
  const { t, tOr, api, el, formatTime, formatDuration, toast, errorText } = Linli;
  /* API paths in one place. */
  const PATHS = {
    alerts: (closed) => "/api/alerts?limit=500" + (closed ? "" : "&active=true"),
    alert: (id) => `/api/alerts/${id}`,
    action: (id, action) => `/api/alerts/${id}/${action === "acknowledge" ? "ack" : action}`,
    kpis: "/api/kpis",
    devices: "/api/devices",
    series: (site, id, metric) => "/api/telemetry/series?" + new URLSearchParams({ site, device: id, metric, points: "120" }),
    latest: (site, id) => "/api/telemetry/latest?" + new URLSearchParams({ site, device: id }),
    gateways: "/api/gateways",
    audit: "/api/audit?limit=200",
  };
  const SEVERITIES = ["critical", "major", "minor", "warning", "info"];
  const ACTORS = new Set(["admin", "manager", "responder", "guard"]);

  const me = await Linli.init();
  const canAct = ACTORS.has(me.role);
  const alerts = new Map();
  let selected = null;
  let sound = localStorage.getItem("linli.sound") !== "off";
  let audio = null;

  const items = (body) => (Array.isArray(body) ? body : (body && body.items) || []);

  /* ---- sound on critical (WebAudio; browsers allow it after the first user gesture) ---- */
  function renderSound() {
    const button = document.getElementById("sound");
    button.textContent = sound ? t("common.sound_on") : t("common.sound_off");
  }
  document.getElementById("sound").addEventListener("click", () => {
    sound = !sound;
    localStorage.setItem("linli.sound", sound ? "on" : "off");
    renderSound();
    if (sound) beep(1);
  });
  renderSound();
  function beep(times) {
    if (!sound) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (let i = 0; i < times; i += 1) {
        const osc = audio.createOscillator(), gain = audio.createGain();
        osc.type = "square";
        osc.frequency.value = i % 2 ? 660 : 880;
        gain.gain.value = 0.15;
        osc.connect(gain).connect(audio.destination);
        const start = audio.currentTime + i * 0.35;
        osc.start(start);
        osc.stop(start + 0.25);
      }
      window.linliBeeps = (window.linliBeeps || 0) + 1;
    } catch (error) {
      console.warn("sound", error);
    }
  }

  /* ---- tabs ---- */
  const loaders = { map: loadMap, devices: loadDevices, gateways: loadGateways, audit: loadAudit, users: loadUsers };
  const ROLES = ["admin", "manager", "guard", "responder", "resident", "viewer"];
  if (me.role === "admin") document.getElementById("users-tab").classList.remove("hidden");
  if (me.role !== "admin" && me.role !== "manager") document.querySelector('#tabs button[data-tab="audit"]').classList.add("hidden");
  Linli.tabs(loaders);

  /* ---- KPIs ---- */
  async function loadKpis() {
    const box = document.getElementById("kpis");
    try {
      const k = await api(PATHS.kpis);
      box.replaceChildren(
        ...SEVERITIES.map((s) =>
          el("div", { class: "kpi " + s, dataset: { kpi: s } }, el("div", { class: "value" }, String((k.open_by_severity || {})[s] || 0)), el("div", { class: "label" }, t("severity." + s))),
        ),
        el("div", { class: "kpi", dataset: { kpi: "mtta" } }, el("div", { class: "value" }, formatDuration(k.mtta_s)), el("div", { class: "label" }, t("kpi.mtta"))),
        el("div", { class: "kpi", dataset: { kpi: "mttr" } }, el("div", { class: "value" }, formatDuration(k.mttr_s)), el("div", { class: "label" }, t("kpi.mttr"))),
      );
    } catch (error) {
      box.replaceChildren(el("div", { class: "kpi" }, el("div", { class: "label" }, errorText(error))));
    }
  }

  /* ---- alert board ---- */
  function rank(a) {
    const unresolved = ["open", "acknowledged", "in_progress"].includes(a.status) ? 0 : 1;
    return [unresolved, SEVERITIES.indexOf(a.severity), -new Date(a.raised_at).getTime()];
  }
  function compare(a, b) {
    const ra = rank(a), rb = rank(b);
    for (let i = 0; i < ra.length; i += 1) if (ra[i] !== rb[i]) return ra[i] - rb[i];
    return b.id - a.id;
  }
  function title(a) {
    return Linli.state.locale === "en" ? a.title_en || a.title_zh : a.title_zh || a.title_en;
  }
  function renderList(fresh) {
    const showClosed = document.getElementById("show-closed").checked;
    const list = [...alerts.values()].filter((a) => showClosed || a.status !== "closed").sort(compare);
    const box = document.getElementById("alert-list");
    if (list.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("alerts.empty")));
      return;
    }
    box.replaceChildren(
      ...list.map((a) =>
        el(
          "div",
          {
            class: "alert-card" + (a.id === selected ? " selected" : "") + (fresh && fresh.has(a.id) ? " new" : ""),
            dataset: { alertId: a.id, severity: a.severity, status: a.status },
            onclick: () => select(a.id),
          },
          el("div", { class: "bar " + a.severity }),
          el(
            "div",
            {},
            el("div", { class: "title" }, title(a)),
            el("div", { class: "meta" }, `${a.subject} · ${formatTime(a.raised_at, true, a.site)}${a.count > 1 ? " · ×" + a.count : ""}`),
          ),
          el(
            "div",
            {},
            el("span", { class: "badge sev-" + a.severity }, t("severity." + a.severity)),
            " ",
            el("span", { class: "badge st status" }, t("status." + a.status)),
          ),
        ),
      ),
    );
  }

  async function loadAlerts() {
    const body = await api(PATHS.alerts(document.getElementById("show-closed").checked));
    alerts.clear();
    for (const a of items(body)) alerts.set(a.id, a);
    renderList();
  }
  document.getElementById("show-closed").addEventListener("change", () => loadAlerts().catch((e) => toast(errorText(e), "error")));

  async function select(id) {
    selected = id;
    renderList();
    const box = document.getElementById("alert-detail");
    box.replaceChildren(el("p", { class: "muted" }, t("common.loading")));
    try {
      const detail = await api(PATHS.alert(id));
      const a = detail.alert;
      alerts.set(a.id, a);
      renderDetail(a, detail.timeline || []);
      renderList();
    } catch (error) {
      box.replaceChildren(el("p", { class: "muted" }, errorText(error)));
    }
  }

  function actionButton(a, action, enabled, extra) {
    return el(
      "button",
      {
        class: "btn" + (action === "close" || action === "resolve" ? " ok" : action === "escalate" ? " danger" : ""),
        dataset: { action },
        disabled: !canAct || !enabled,
        onclick: () => act(a.id, action, extra ? extra() : {}),
      },
      t("action." + action),
    );
  }

  /* What the user is typing survives re-renders (live updates re-draw the detail). */
  let draft = { id: null, note: "", assignee: null };
  function renderDetail(a, events) {
    const box = document.getElementById("alert-detail");
    const unresolved = ["open", "acknowledged", "in_progress"].includes(a.status);
    if (draft.id !== a.id) draft = { id: a.id, note: "", assignee: null };
    const assignee = el("input", { id: "assignee", value: draft.assignee ?? (a.assignee || ""), placeholder: t("alerts.assignee") });
    const note = el("textarea", { id: "note", rows: 2, placeholder: t("alerts.comment_placeholder") });
    note.value = draft.note;
    note.addEventListener("input", () => (draft.note = note.value));
    assignee.addEventListener("input", () => (draft.assignee = assignee.value));
    const hadFocus = document.activeElement && document.activeElement.id;
    const dl = el("dl");
    const field = (label, value) => dl.append(el("dt", {}, t(label)), el("dd", {}, value === null || value === undefined || value === "" ? t("common.none") : value));
    field("alerts.subject", a.subject);
    field("alerts.raised", formatTime(a.raised_at, true, a.site));
    field("alerts.count", String(a.count));
    field("alerts.cleared", a.cleared ? formatTime(a.cleared_at, true, a.site) : t("common.none"));
    field("alerts.assignee", a.assignee);
    field("alerts.tier", String(a.escalation_tier));
    if (a.flapping) field("alerts.flapping", "⚠");
    box.replaceChildren(
      el("h2", { id: "detail-title" }, el("span", { class: "badge sev-" + a.severity }, t("severity." + a.severity)), " ", title(a)),
      el("p", {}, el("span", { class: "badge st", id: "detail-status", dataset: { status: a.status } }, t("status." + a.status)), " ", el("span", { class: "muted" }, a.rule_id)),
      dl,
      el(
        "div",
        { class: "actions" },
        actionButton(a, "acknowledge", a.status === "open"),
        actionButton(a, "start", a.status === "acknowledged"),
        actionButton(a, "resolve", a.status === "acknowledged" || a.status === "in_progress", () => ({ note: note.value || null })),
        actionButton(a, "close", a.status === "resolved", () => ({ note: note.value || null })),
        actionButton(a, "escalate", unresolved, () => ({ note: note.value || null })),
      ),
      el("div", { class: "row" }, assignee, el("button", { class: "btn ghost", dataset: { action: "assign" }, disabled: !canAct || !unresolved, onclick: () => act(a.id, "assign", { assignee: assignee.value.trim() }) }, t("action.assign"))),
      el("div", { class: "row" }, note, el("button", { class: "btn ghost", dataset: { action: "comment" }, disabled: !canAct, onclick: () => note.value.trim() && act(a.id, "comment", { text: note.value.trim() }) }, t("action.comment"))),
      el("h2", {}, t("alerts.timeline")),
      el(
        "ul",
        { class: "timeline", id: "timeline" },
        ...events.map((e) =>
          el(
            "li",
            { dataset: { kind: e.kind } },
            el("div", { class: "when" }, formatTime(e.ts, true, a.site) + " · " + e.actor),
            el("div", {}, tOr("timeline." + e.kind, tOr("action." + e.kind, e.kind)) + (e.to_status && e.to_status !== e.from_status ? " → " + t("status." + e.to_status) : "")),
            e.note ? el("div", { class: "muted" }, e.note) : null,
          ),
        ),
      ),
      a.evidence && a.evidence.length ? el("details", {}, el("summary", {}, t("alerts.evidence")), el("pre", { class: "msgs" }, JSON.stringify(a.evidence, null, 1))) : null,
    );
    if (hadFocus === "note") note.focus();
    if (hadFocus === "assignee") assignee.focus();
  }

  async function act(id, action, body) {
    try {
      const updated = await api(PATHS.action(id, action), { method: "POST", json: body || {} });
      if (action === "escalate") window.linliEscalated = id;
      if (draft.id === id) {
        if (body && (body.note || body.text)) draft.note = "";  // the note went with the action
        if (action === "assign") draft.assignee = null;
      }
      if (updated && updated.id) alerts.set(updated.id, updated);
      toast(t("action." + action) + " ✓", "ok");
      await select(id);
      loadKpis();
    } catch (error) {
      toast(errorText(error), "error");
    }
  }

  /* ---- live stream ---- */
  Linli.stream((event) => {
    if (event.type !== "alert" || !event.alert) return;
    const a = event.alert;
    const known = alerts.has(a.id);
    alerts.set(a.id, a);
    renderList(known ? null : new Set([a.id]));
    if (!known && a.severity === "critical") beep(3);
    if (a.id === selected) select(a.id);
    loadKpis();
  });

  /* ---- map, devices, gateways, audit ---- */
  function deviceState(d) {
    if (d.approval === "pending") return "pending";
    for (const a of alerts.values()) {
      if (a.site === d.site && a.device === d.id && ["open", "acknowledged", "in_progress"].includes(a.status)) return "alarm";
    }
    if (d.online === false) return "offline";
    return "ok";
  }
  async function loadMap() {
    const devices = items(await api(PATHS.devices)).map((d) => Object.assign({}, d, { state: deviceState(d) }));
    document.getElementById("map").replaceChildren(LinliCharts.siteMap(devices, (d) => showDevice(d)));
  }
  /* Gateways and devices waiting for a manager's approval. */
  async function loadPending() {
    const box = document.getElementById("pending");
    if (!["admin", "manager"].includes(me.role)) return;
    const pending = await api("/api/registry/pending");
    const rows = [
      ...pending.gateways.map((g) => ({ what: "gateways", site: g.site, id: g.id, kind: t("kind.gateway") })),
      ...pending.devices.map((d) => ({ what: "devices", site: d.site, id: d.id, kind: d.kind ? tOr("kind." + d.kind, d.kind) : null })),
    ];
    const kinds = Object.keys(Linli.state.config.metrics || {});
    box.classList.toggle("hidden", rows.length === 0);
    box.replaceChildren(
      el("h2", {}, t("devices.pending")),
      ...rows.map((r) => {
        /* A device of unknown kind gets its kind with the approval. */
        const pick = r.kind === null ? el("select", { class: "kind-pick" }, el("option", { value: "" }, t("devices.kind")), ...kinds.map((k) => el("option", { value: k }, tOr("kind." + k, k)))) : null;
        return el(
          "div",
          { class: "row pending-item", dataset: { pending: `${r.site}/${r.id}` } },
          el("span", { style: "flex:1" }, `${r.site}/${r.id}` + (r.kind ? ` · ${r.kind}` : "")),
          pick,
          ...["approved", "rejected"].map((approval) =>
            el("button", {
              class: "btn " + (approval === "approved" ? "ok" : "ghost"),
              dataset: { approval },
              onclick: async () => {
                try {
                  const body = pick && pick.value ? { approval, kind: pick.value } : { approval };
                  await api(`/api/registry/${r.what}/${encodeURIComponent(r.site)}/${encodeURIComponent(r.id)}/approval`, { method: "POST", json: body });
                  toast(t(approval === "approved" ? "devices.approved" : "devices.rejected", { name: r.id }), "ok");
                } catch (error) {
                  toast(errorText(error), "error");
                }
                loadDevices();
              },
            }, t(approval === "approved" ? "devices.approve" : "devices.reject")),
          ),
        );
      }),
    );
  }
  async function loadDevices() {
    loadPending().catch((error) => toast(errorText(error), "error"));
    const devices = items(await api(PATHS.devices));
    document.getElementById("device-list").replaceChildren(
      el(
        "table",
        {},
        el("tr", {}, ...["devices.id", "devices.kind", "devices.place", "devices.gateway", "devices.state", "devices.last_seen"].map((k) => el("th", {}, t(k)))),
        ...devices.map((d) =>
          el(
            "tr",
            { class: "clickable", onclick: () => showDevice(d), dataset: { device: d.id } },
            el("td", {}, d.id),
            el("td", {}, d.kind ? tOr("kind." + d.kind, d.kind) : ""),
            el("td", {}, [d.building, d.floor, d.zone].filter(Boolean).join(" / ")),
            el("td", {}, d.gateway || ""),
            el("td", {}, t("state." + deviceState(d))),
            el("td", {}, formatTime(d.last_seen)),
          ),
        ),
      ),
    );
  }
  async function showDevice(d) {
    document.querySelector('#tabs button[data-tab="devices"]').click();
    const box = document.getElementById("device-detail");
    const known = (Linli.state.config.metrics || {})[d.kind] || [];
    const metrics = known.filter((m) => !m.binary);
    box.replaceChildren(
      el("h2", { id: "device-title" }, `${d.id} · ${d.kind ? tOr("kind." + d.kind, d.kind) : ""}`),
      el("p", { class: "muted" }, [d.building, d.floor, d.unit, d.zone].filter(Boolean).join(" / ") + " · " + t("state." + deviceState(d))),
    );
    try {
      const latest = items(await api(PATHS.latest(d.site, d.id)));
      if (latest.length) box.append(el("table", {}, ...latest.map((r) => el("tr", {}, el("td", {}, tOr("metric." + r.metric, r.metric)), el("td", {}, String(r.value)), el("td", { class: "muted" }, formatTime(r.ts))))));
    } catch (error) {
      box.append(el("p", { class: "muted" }, errorText(error)));
    }
    box.append(el("h2", {}, t("devices.chart")));
    for (const metric of metrics) {
      try {
        const series = await api(PATHS.series(d.site, d.id, metric.name));
        const buckets = series.buckets || [];
        box.append(
          el("h3", { dataset: { metric: metric.name } }, tOr("metric." + metric.name, metric.name) + (metric.unit ? ` (${metric.unit})` : "")),
          buckets.length ? LinliCharts.line(buckets.map((p) => ({ t: p.start, avg: p.avg, min: p.min, max: p.max })), { unit: metric.unit || "" }) : el("p", { class: "muted" }, t("devices.no_data")),
        );
      } catch (error) {
        box.append(el("p", { class: "muted" }, metric.name + ": " + errorText(error)));
      }
    }
    if (metrics.length === 0) box.append(el("p", { class: "muted" }, t("devices.no_data")));
  }
  async function loadGateways() {
    const gateways = items(await api(PATHS.gateways));
    document.getElementById("gateway-list").replaceChildren(
      el(
        "table",
        {},
        el("tr", {}, ...["gateways.id", "gateways.status", "gateways.last_seen", "gateways.gaps", "gateways.version"].map((k) => el("th", {}, t(k)))),
        ...gateways.map((g) =>
          el(
            "tr",
            { dataset: { site: g.site, gateway: g.id } },  // a gateway id is unique per site only
            el("td", {}, `${g.site}/${g.id}` + (g.name ? ` · ${g.name}` : "")),
            el("td", { class: g.online ? "" : "muted" }, t("state." + (g.online ? "online" : "offline")) + (g.state_reason ? ` (${g.state_reason})` : "")),
            el("td", {}, formatTime(g.state_at)),
            el("td", { dataset: { gaps: `${g.site}/${g.id}` } }, "…"),
            el("td", {}, g.agent_version || ""),
          ),
        ),
      ),
    );
    fillGaps(gateways.slice(0, 50));
  }
  async function fillGaps(gateways) {
    for (const g of gateways) {
      const cell = document.querySelector(`[data-gaps="${CSS.escape(g.site + "/" + g.id)}"]`);
      try {
        const health = await api(`/api/gateways/${encodeURIComponent(g.site)}/${encodeURIComponent(g.id)}/health`);
        if (cell) cell.textContent = `${health.open_gaps} (${health.missing_messages})`;
      } catch (error) {
        if (cell) cell.textContent = t("common.none");
      }
    }
  }
  async function loadAudit() {
    const rows = items(await api(PATHS.audit));
    document.getElementById("audit-list").replaceChildren(
      el(
        "table",
        { id: "audit-table" },
        el("tr", {}, ...["audit.ts", "audit.actor", "audit.action", "audit.target", "audit.detail"].map((k) => el("th", {}, t(k)))),
        ...rows.map((r) =>
          el(
            "tr",
            { dataset: { action: r.action } },
            el("td", {}, formatTime(r.ts)),
            el("td", {}, r.actor),
            el("td", {}, r.action),
            el("td", {}, r.target),
            el("td", { class: "muted" }, JSON.stringify(r.detail)),
          ),
        ),
      ),
    );
  }

  /* ---- users (admins) ---- */
  function roleSelect(value, onChange) {
    const select = el("select", { onchange: onChange }, ...ROLES.map((r) => el("option", { value: r }, t("role." + r))));
    select.value = value;
    return select;
  }
  async function loadUsers() {
    const users = items(await api("/api/users"));
    document.getElementById("user-list").replaceChildren(
      el(
        "table",
        { id: "users-table" },
        el("tr", {}, ...["users.username", "users.display_name", "users.role", "users.locale", "users.active"].map((k) => el("th", {}, t(k))), el("th", {})),
        ...users.map((u) =>
          el(
            "tr",
            { dataset: { user: u.username } },
            el("td", {}, u.username),
            el("td", {}, u.display_name),
            el("td", {}, roleSelect(u.role, async (event) => {
              try {
                await api(`/api/users/${encodeURIComponent(u.username)}/role`, { method: "PUT", json: { role: event.target.value } });
                toast(t("users.role_changed", { name: u.username, role: t("role." + event.target.value) }), "ok");
              } catch (error) {
                toast(errorText(error), "error");
              }
              loadUsers();
            })),
            el("td", {}, u.locale),
            el("td", {}, u.active ? "✓" : "✗"),
            el("td", {}, el("button", { class: "btn ghost", onclick: async () => {
              try {
                await api(`/api/users/${encodeURIComponent(u.username)}/active`, { method: "PUT", json: { active: !u.active } });
              } catch (error) {
                toast(errorText(error), "error");
              }
              loadUsers();
            } }, t(u.active ? "users.disable" : "users.enable"))),
          ),
        ),
      ),
    );
  }
  const newRole = document.getElementById("new-role");
  newRole.replaceChildren(...ROLES.map((r) => el("option", { value: r }, t("role." + r))));
  newRole.value = "guard";
  document.getElementById("user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      username: document.getElementById("new-username").value.trim(),
      display_name: document.getElementById("new-display").value.trim() || null,
      password: document.getElementById("new-password").value,
      role: newRole.value,
      locale: document.getElementById("new-locale").value,
    };
    try {
      await api("/api/users", { method: "POST", json: body });
      toast(t("users.created", { name: body.username }), "ok");
      event.target.reset();
      newRole.value = "guard";
      loadUsers();
    } catch (error) {
      toast(errorText(error), "error");
    }
  });

  await Promise.all([loadKpis(), loadAlerts().catch((error) => toast(errorText(error), "error"))]);
  document.body.dataset.ready = "1";
})();
