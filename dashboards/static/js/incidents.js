/* Incident board (managers): incidents by state, overdue in red; detail with timeline, photos,
   linked alerts; dispatch, resolve, close, whistle, comment. The whistle board: which summoned
   departments have reported each stage, which have not. Both follow incident changes live (the
   stream), with a slow poll as a fallback. */
"use strict";
(async () => {
  const { t, api, el, formatTime, toast } = Linli;
  const G = LinliGov;
  await Linli.init({ roles: ["manager", "admin"] });
  const $ = (id) => document.getElementById(id);
  const GROUPS = [
    { key: "new", states: ["reported", "open"] },
    { key: "dispatched", states: ["dispatched"] },
    { key: "in_progress", states: ["in_progress"] },
    { key: "resolved", states: ["resolved"] },
    { key: "done", states: ["closed", "cancelled"] },
  ];
  let selected = null;
  let orgs = [];
  const draft = { id: null, note: "", comment: "", closeError: "", closeErrorState: null }; // survives live refreshes

  await G.loadCatalogue();
  orgs = await api(G.PATHS.orgs());

  /* ---- the board ---- */
  async function loadBoard() {
    const list = await api(G.PATHS.incidents({ limit: "500" }));
    const showDone = $("show-done").checked;
    const box = $("incident-list");
    const groups = GROUPS.filter((g) => showDone || g.key !== "done")
      .map((g) => ({ g, items: list.filter((i) => g.states.includes(i.state)) }))
      .filter(({ items }) => items.length);
    if (groups.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("incidents.empty")));
      return;
    }
    box.replaceChildren(
      ...groups.map(({ g, items }) =>
        el(
          "div",
          { class: "gov-group", dataset: { group: g.key } },
          el("h3", {}, t("incidents.group." + g.key) + ` (${items.length})`),
          ...items.map((i) =>
            el(
              "div",
              {
                class: "gov-card clickable" + (i.overdue ? " is-overdue" : "") + (i.id === selected ? " selected" : ""),
                dataset: { incident: i.id, state: i.state, overdue: i.overdue ? "1" : "0" },
                onclick: () => select(i.id),
              },
              el("div", {}, el("strong", {}, G.categoryName(i.category)), " ", G.stateBadge(i), " ", G.overdueBadge(i), i.drill ? el("span", { class: "badge drill" }, t("gov.drill")) : null),
              el("div", {}, G.title(i)),
              el("div", { class: "muted" }, `#${i.id} · ${G.place(i)} · ${formatTime(i.created_at, true, i.site)}` + (i.due_at ? " · " + t("gov.due_short", { time: formatTime(i.due_at, true, i.site) }) : "")),
            ),
          ),
        ),
      ),
    );
  }
  $("show-done").addEventListener("change", () => loadBoard().catch((e) => toast(G.problem(e), "error")));

  async function select(id) {
    selected = id;
    const box = $("incident-detail");
    try {
      const incident = await api(G.PATHS.incident(id));
      renderDetail(incident);
    } catch (error) {
      box.replaceChildren(el("p", { class: "muted" }, G.problem(error)));
    }
    loadBoard().catch((e) => toast(G.problem(e), "error"));
  }

  function renderDetail(i) {
    const can = new Set(i.allowed_actions || []);
    if (draft.id !== i.id) Object.assign(draft, { id: i.id, note: "", comment: "", closeError: "", closeErrorState: null });
    const box = $("incident-detail");
    const button = (action, label, onclick, cls) =>
      el("button", { class: "btn " + (cls || ""), type: "button", dataset: { action }, disabled: !can.has(action), onclick }, t(label));

    /* dispatch: organisation + assignee + deadline */
    const siteOrgs = orgs.filter((o) => o.site === i.site);
    const orgPick = el("select", { id: "dispatch-org" }, ...siteOrgs.filter((o) => o.kind !== "department").concat(siteOrgs.filter((o) => o.kind === "department")).map((o) => el("option", { value: o.id }, `${G.orgName(o)} · ${t("gov.kind." + o.kind)}`)));
    if (i.org_id) orgPick.value = String(i.org_id);
    const assignee = el("input", { id: "dispatch-assignee", maxlength: 64, placeholder: t("incidents.assignee") });
    const dueMin = el("input", { id: "dispatch-due", type: "number", min: 1, max: 525600, placeholder: t("incidents.due_minutes") });
    const dispatchRow = el(
      "div",
      { class: "row wrap" },
      orgPick,
      assignee,
      dueMin,
      button("dispatch", "incidents.dispatch", () => {
        const body = { org_id: Number(orgPick.value) };
        if (assignee.value.trim()) body.assignee = assignee.value.trim();
        if (dueMin.value) body.due_s = Math.round(Number(dueMin.value) * 60);
        act(i.id, "dispatch", body);
      }),
    );

    /* whistle: choose departments of the site */
    const departments = siteOrgs.filter((o) => o.kind === "department");
    const picks = departments.map((o) => el("label", { class: "pick" }, el("input", { type: "checkbox", value: o.id, dataset: { department: o.department || "" } }), " ", G.orgName(o) + (o.department ? ` (${t("gov.department." + o.department)})` : "")));
    const whistleReason = el("input", { id: "whistle-reason", maxlength: 2000, placeholder: t("incidents.whistle_reason") });
    const whistleBox = el(
      "div",
      { class: "whistle-pick", id: "whistle-pick" },
      departments.length ? picks : el("p", { class: "muted" }, t("incidents.no_departments")),
      el("div", { class: "row" }, whistleReason, button("whistle", "incidents.whistle", () => {
        const chosen = [...document.querySelectorAll("#whistle-pick input:checked")].map((c) => Number(c.value));
        if (!chosen.length) return toast(t("incidents.pick_department"), "error");
        if (!whistleReason.value.trim()) return toast(t("incidents.need_reason"), "error");
        act(i.id, "whistle", { departments: chosen, reason: whistleReason.value.trim() });
      }, "danger")),
    );

    /* resolve (disposal note), close (409 explained), comment */
    const note = el("textarea", { id: "resolve-note", rows: 2, maxlength: 4000, placeholder: t("incidents.disposal_note") });
    note.value = draft.note;
    note.addEventListener("input", () => (draft.note = note.value));
    const comment = el("input", { id: "comment-text", maxlength: 4000, placeholder: t("incidents.comment") });
    comment.value = draft.comment;
    comment.addEventListener("input", () => (draft.comment = comment.value));
    const closeError = el("div", { class: "error", id: "close-error", role: "alert", dataset: { state: i.state } });
    // A live refresh re-renders the detail: the refusal stays until the incident's state moves.
    if (draft.closeErrorState === i.state) closeError.textContent = draft.closeError;

    box.replaceChildren(
      el("h2", { id: "incident-title" }, `#${i.id} ${G.title(i)}`),
      el("p", {}, G.stateBadge(i, "incident-state"), " ", G.overdueBadge(i), " ", el("span", { class: "muted" }, G.categoryName(i.category) + " · " + t("gov.source." + i.source))),
      G.facts(i, [
        ["gov.place", G.place(i)],
        ["gov.reporter", i.reporter],
        ["resident.description", i.description],
        ["gov.created", G.when(i.created_at, i)],
        ["gov.due", G.when(i.due_at, i)],
        ["gov.org", G.orgOf(i)],
        ["incidents.assignee", i.assignee],
        ["gov.accepted_at", G.when(i.accepted_at, i)],
        ["gov.arrived_at", G.when(i.arrived_at, i)],
        ["gov.resolved_at", G.when(i.resolved_at, i)],
        ["gov.disposal", i.disposal_note],
        ["gov.confirmed_at", G.when(i.confirmed_at, i)],
        ["gov.rating", i.rating ? "★".repeat(i.rating) + (i.resident_comment ? " · " + i.resident_comment : "") : null],
        ["incidents.alerts", i.alert_ids && i.alert_ids.length ? el("span", { id: "linked-alerts" }, ...i.alert_ids.map((a) => el("a", { href: "/console", class: "alert-link" }, "#" + a + " "))) : null],
      ]),
      G.photos(i),
      el("p", { class: "after-action" }, t("risk.report") + ": ", ...["html", "pdf"].map((ext, n) => [n ? " · " : null, el("a", { href: G.PATHS.afterAction("incident", i.id, ext), target: "_blank", class: "report-" + ext }, ext.toUpperCase())])),
      el("h3", {}, t("incidents.actions")),
      dispatchRow,
      el("div", { class: "row" }, note, button("resolve", "incidents.resolve", () => {
        if (!note.value.trim()) return toast(t("incidents.need_note"), "error");
        act(i.id, "resolve", { note: note.value.trim() });
      }, "ok")),
      el("div", { class: "row" }, button("close", "incidents.close", () => act(i.id, "close", {}, closeError), "ok"), closeError),
      el("h3", {}, t("incidents.whistle_title")),
      whistleBox,
      i.whistles && i.whistles.length ? whistleTable(i.whistles, false) : null,
      el("div", { class: "row" }, comment, button("comment", "incidents.add_comment", () => {
        if (!comment.value.trim()) return;
        act(i.id, "comment", { text: comment.value.trim() });
      }, "ghost")),
      el("h3", {}, t("gov.timeline")),
      G.timeline(i, "gov-timeline"),
    );
  }

  async function act(id, action, body, errorBox) {
    try {
      const updated = await api(G.PATHS.action(id, action), { method: "POST", json: body || {} });
      if (action === "resolve") draft.note = "";
      if (action === "comment") draft.comment = "";
      draft.closeError = "";
      toast(t("gov.done." + action), "ok");
      renderDetail(updated);
      loadBoard().catch((e) => toast(G.problem(e), "error"));
    } catch (error) {
      const text = error instanceof Linli.ApiError && error.status === 409 && action === "close"
        ? t("incidents.close_refused") + " (" + error.message + ")"
        : G.problem(error);
      if (errorBox) {
        errorBox.textContent = text;
        if (action === "close") {
          Object.assign(draft, { closeError: text, closeErrorState: errorBox.dataset.state });
          // A live refresh may have re-rendered the detail while the request was out: errorBox is
          // then detached, and the refusal belongs in the box on screen (same incident, same state).
          const shown = $("close-error");
          if (shown && shown !== errorBox && draft.id === id && shown.dataset.state === draft.closeErrorState) shown.textContent = text;
        }
      }
      toast(text, "error");
    }
  }

  /* ---- the whistle board ---- */
  function whistleTable(list, withIncident) {
    return el(
      "table",
      { class: "whistles", id: withIncident ? "whistle-table" : null },
      el("tr", {}, ...[withIncident ? "incidents.incident" : null, "incidents.department", "incidents.blown_at", "incidents.reason", "gov.stage.ack", "gov.stage.arrive", "gov.stage.resolve", "incidents.reminders"].filter(Boolean).map((k) => el("th", {}, t(k)))),
      ...list.map((w) =>
        el(
          "tr",
          { dataset: { whistle: w.id, org: w.org_id, overdue: w.overdue_stage || "" }, class: w.overdue_stage ? "is-overdue" : null },
          withIncident ? el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); showIncident(w.incident_id); } }, "#" + w.incident_id)) : null,
          el("td", { class: "org" }, G.orgOf(w)),
          el("td", {}, formatTime(w.blown_at)),
          el("td", {}, (w.auto ? t("incidents.auto") + " · " : "") + (w.reason === "deadline" ? t("incidents.reason_deadline") : w.reason)),
          ...G.stageCells(w),
          el("td", { class: "reminders" + (w.reminders ? " late" : "") }, String(w.reminders)),
        ),
      ),
    );
  }
  async function loadWhistles() {
    const all = $("whistle-all").checked;
    const list = await api(G.PATHS.whistles(all ? {} : { open: "1" }));
    const waiting = list.filter((w) => !w.resolved_at).length;
    const late = list.filter((w) => w.overdue_stage).length;
    $("whistle-summary").textContent = t("incidents.whistle_summary", { waiting, late });
    $("whistle-board").replaceChildren(list.length ? whistleTable(list, true) : el("p", { class: "muted" }, t("incidents.no_whistles")));
  }
  $("whistle-all").addEventListener("change", () => loadWhistles().catch((e) => toast(G.problem(e), "error")));
  function showIncident(id) {
    document.querySelector('#tabs button[data-tab="board"]').click();
    select(id);
  }

  Linli.tabs({ board: loadBoard, whistles: loadWhistles });
  /* The open tab follows incident changes live; the detail is not redrawn under a typing user. */
  G.live(() => {
    const onWhistles = !document.querySelector('[data-view="whistles"]').classList.contains("hidden");
    const typing = $("incident-detail").contains(document.activeElement);
    return onWhistles ? loadWhistles() : typing ? loadBoard() : selected ? select(selected) : loadBoard();
  }, 60);
  await loadBoard();
  const wanted = Number(new URLSearchParams(location.search).get("incident"));
  if (wanted) await select(wanted);
  document.body.dataset.ready = "1";
})();
