/* Responder page (mobile): the whistles my departments must answer (report ack / arrive /
   resolve, each within its deadline) and the work orders dispatched to my organisations
   (accept, arrive, resolve with a note). */
"use strict";
(async () => {
  const { t, api, el, formatTime, toast } = Linli;
  const G = LinliGov;
  await Linli.init({ roles: ["responder", "manager", "admin"] });
  const $ = (id) => document.getElementById(id);
  await G.loadCatalogue();
  const notes = new Map(); // what is typed per card survives refreshes

  function noteInput(key, placeholder) {
    const input = el("input", { class: "note", maxlength: 4000, placeholder: t(placeholder) });
    input.value = notes.get(key) || "";
    input.addEventListener("input", () => notes.set(key, input.value));
    return input;
  }

  /* ---- whistles: report in, stage by stage ---- */
  async function loadWhistles(all) {
    const list = all.filter((w) => !w.resolved_at);
    const box = $("my-whistles");
    if (list.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("responder.no_whistles")));
      return;
    }
    const incidents = new Map();
    for (const id of new Set(list.map((w) => w.incident_id))) {
      try {
        incidents.set(id, await api(G.PATHS.incident(id)));
      } catch (error) {
        console.warn("incident", id, error);
      }
    }
    box.replaceChildren(
      ...list.map((w) => {
        const i = incidents.get(w.incident_id);
        const stage = G.nextStage(w);
        const key = "w" + w.id;
        const note = noteInput(key, "responder.note");
        return el(
          "div",
          { class: "gov-card" + (w.overdue_stage ? " is-overdue" : ""), dataset: { whistle: w.id, incident: w.incident_id, next: stage || "" } },
          el("div", {}, el("strong", {}, i ? G.categoryName(i.category) : "#" + w.incident_id), " · ", el("span", { class: "org" }, G.orgOf(w)), " ", w.overdue_stage ? el("span", { class: "badge overdue" }, t("gov.overdue")) : null),
          i ? el("div", {}, G.title(i)) : null,
          i ? el("div", { class: "muted" }, G.place(i)) : null,
          el("div", { class: "muted" }, t("responder.blown", { time: formatTime(w.blown_at), reason: w.reason === "deadline" ? t("incidents.reason_deadline") : w.reason })),
          el("table", { class: "whistles compact" }, el("tr", {}, ...G.STAGES.map((s) => el("th", {}, t("gov.stage." + s)))), el("tr", {}, ...G.stageCells(w))),
          note,
          el(
            "div",
            { class: "actions" },
            ...G.STAGES.map((s) =>
              el("button", {
                class: "btn big" + (s === "resolve" ? " ok" : ""), type: "button", dataset: { stage: s }, disabled: s !== stage,
                onclick: () => reportStage(w, s, note.value.trim() || null, key),
              }, t("responder.report." + s)),
            ),
          ),
        );
      }),
    );
  }
  async function reportStage(w, stage, note, key) {
    try {
      await api(G.PATHS.stage(w.id), { method: "POST", json: { stage, note } });
      notes.delete(key);
      toast(t("responder.reported", { stage: t("gov.stage." + stage) }), "ok");
    } catch (error) {
      toast(G.problem(error), "error");
    }
    await refresh();
  }

  /* ---- work orders ---- */
  /* Work orders: incidents dispatched to my organisations or to me — not those I only see
     because my department was summoned (those are answered above). */
  async function loadOrders(whistles) {
    const me = Linli.state.me.username;
    const summoned = new Set(whistles.map((w) => w.incident_id));
    const mine = new Set(whistles.map((w) => w.org_id));
    const list = (await api(G.PATHS.incidents({ limit: "200" })))
      .filter((i) => ["dispatched", "in_progress"].includes(i.state))
      .filter((i) => i.assignee === me || !summoned.has(i.id) || mine.has(i.org_id));
    const box = $("my-orders");
    if (list.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("responder.no_orders")));
      return;
    }
    box.replaceChildren(
      ...list.map((i) => {
        const key = "i" + i.id;
        const note = noteInput(key, "incidents.disposal_note");
        const button = (action, enabled, cls, body) =>
          el("button", { class: "btn big " + (cls || ""), type: "button", dataset: { action }, disabled: !enabled, onclick: () => work(i, action, body ? body() : undefined, key) }, t("responder.do." + action));
        return el(
          "div",
          { class: "gov-card" + (i.overdue ? " is-overdue" : ""), dataset: { incident: i.id, state: i.state } },
          el("div", {}, el("strong", {}, G.categoryName(i.category)), " ", G.stateBadge(i), " ", G.overdueBadge(i)),
          el("div", {}, G.title(i)),
          el("div", { class: "muted" }, `#${i.id} · ${G.place(i)}` + (i.due_at ? " · " + t("gov.due_short", { time: formatTime(i.due_at, true, i.site) }) : "")),
          i.arrived_at ? el("div", { class: "muted" }, t("gov.arrived_at") + ": " + formatTime(i.arrived_at, true, i.site)) : null,
          note,
          el(
            "div",
            { class: "actions" },
            button("accept", i.state === "dispatched"),
            button("arrive", i.state === "in_progress" && !i.arrived_at),
            button("resolve", true, "ok", () => ({ note: note.value.trim() })),
          ),
        );
      }),
    );
  }
  async function work(i, action, body, key) {
    if (action === "resolve" && !body.note) {
      toast(t("incidents.need_note"), "error");
      return;
    }
    try {
      await api(G.PATHS.action(i.id, action), { method: "POST", json: body || {} });
      if (action === "resolve") notes.delete(key);
      toast(t("gov.done." + action), "ok");
    } catch (error) {
      toast(G.problem(error), "error");
    }
    await refresh();
  }

  async function refresh() {
    let whistles = [];
    try {
      whistles = await api(G.PATHS.whistles());
      await loadWhistles(whistles);
    } catch (error) {
      $("my-whistles").replaceChildren(el("p", { class: "muted" }, G.problem(error)));
    }
    await loadOrders(whistles).catch((error) => $("my-orders").replaceChildren(el("p", { class: "muted" }, G.problem(error))));
  }
  await refresh();
  /* Follow new whistles and work orders live; not while a note is being typed. */
  G.live(() => {
    if (document.querySelector("main").contains(document.activeElement) && document.activeElement.tagName === "INPUT") return false;
    return refresh();
  }, 60);
  document.body.dataset.ready = "1";
})();
