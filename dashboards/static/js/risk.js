/* Risk & drills (managers): the risk register per building with its level colours and what
   watches each risk; residents living alone (staff only); drills (start one, follow it, read its
   after-action report); statistics for the residents' committee. */
"use strict";
(async () => {
  const { t, tOr, api, el, formatTime, formatDuration, toast } = Linli;
  const G = LinliGov;
  await Linli.init({ roles: ["manager", "admin"] });
  const $ = (id) => document.getElementById(id);
  const LEVELS = ["critical", "high", "medium", "low"];
  const PATHS = {
    risks: "/api/gov/risks",
    watch: (id) => `/api/gov/risks/${id}/watch`,
    residents: "/api/gov/residents",
    drills: "/api/gov/drills",
    scenarios: "/api/gov/drills/scenarios",
    stats: (drill) => "/api/gov/stats" + (drill ? "?drill=1" : ""),
  };
  await G.loadCatalogue().catch(() => null);

  /* ---- risk register, per building ---- */
  let selectedRisk = null;
  async function loadRisks() {
    const risks = await api(PATHS.risks);
    const box = $("risk-list");
    if (risks.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("risk.none")));
      return;
    }
    const byBuilding = new Map();
    for (const r of risks) {
      const key = r.building || "";
      if (!byBuilding.has(key)) byBuilding.set(key, []);
      byBuilding.get(key).push(r);
    }
    box.replaceChildren(
      ...[...byBuilding.keys()].sort().map((building) =>
        el(
          "div",
          { class: "gov-group", dataset: { building } },
          el("h3", {}, building ? t("risk.building", { b: building }) : t("risk.site_wide")),
          el(
            "table",
            { class: "risks" },
            el("tr", {}, ...["risk.title", "risk.level", "risk.score", "risk.phase", "risk.status", "risk.devices", "risk.rules"].map((k) => el("th", {}, t(k)))),
            ...byBuilding.get(building)
              .sort((a, b) => LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level))
              .map((r) =>
                el(
                  "tr",
                  { class: "clickable" + (r.id === selectedRisk ? " selected" : ""), dataset: { risk: r.id, level: r.level }, onclick: () => showWatch(r.id) },
                  el("td", {}, Linli.state.locale === "en" ? r.title_en : r.title_zh),
                  el("td", {}, el("span", { class: "badge level-" + r.level }, t("risk.level." + r.level))),
                  el("td", {}, `${r.likelihood} × ${r.impact}`),
                  el("td", {}, t("gov.phase." + r.phase)),
                  el("td", {}, t("risk.status." + r.status)),
                  el("td", { class: "devices" }, r.device_ids.join(", ") || t("common.none")),
                  el("td", { class: "rules" }, r.rule_ids.join(", ") || t("common.none")),
                ),
              ),
          ),
        ),
      ),
    );
  }
  async function showWatch(id) {
    selectedRisk = id;
    const box = $("risk-watch");
    try {
      const w = await api(PATHS.watch(id));
      const r = w.risk;
      box.replaceChildren(
        el("h2", { id: "watch-title" }, Linli.state.locale === "en" ? r.title_en : r.title_zh),
        el("p", {}, el("span", { class: "badge level-" + r.level }, t("risk.level." + r.level)), " ", el("span", { class: "badge " + (w.watched ? "watched" : "overdue"), id: "watched" }, t(w.watched ? "risk.watched" : "risk.not_watched"))),
        r.measures && r.measures.length ? el("ul", {}, ...r.measures.map((m) => el("li", {}, m))) : null,
        el("h3", {}, t("risk.devices")),
        el(
          "table",
          { id: "watch-devices" },
          el("tr", {}, ...["risk.device", "risk.online", "risk.last_seen", "risk.latest"].map((k) => el("th", {}, t(k)))),
          ...w.devices.map((d) =>
            el(
              "tr",
              { dataset: { device: d.id } },
              el("td", {}, d.id + (d.kind ? " · " + tOr("kind." + d.kind, d.kind) : "")),
              el("td", { class: d.online ? "" : "late" }, t(d.online === null ? "risk.never" : d.online ? "state.online" : "state.offline")),
              el("td", {}, formatTime(d.last_seen)),
              el("td", {}, d.latest.map((x) => `${tOr("metric." + x.metric, x.metric)} ${x.value}`).join(", ") || t("common.none")),
            ),
          ),
        ),
        el("h3", {}, t("risk.rules")),
        el(
          "table",
          { id: "watch-rules" },
          el("tr", {}, ...["risk.rule", "risk.rule_state", "risk.active_alerts"].map((k) => el("th", {}, t(k)))),
          ...w.rules.map((rule) =>
            el(
              "tr",
              { dataset: { rule: rule.id } },
              el("td", {}, rule.id + (rule.title_zh || rule.title_en ? " · " + (Linli.state.locale === "en" ? rule.title_en || rule.title_zh : rule.title_zh || rule.title_en) : "")),
              el("td", {}, t(rule.loaded && rule.enabled ? "risk.rule_on" : "risk.rule_off")),
              el("td", {}, rule.active_alerts.map((a) => `#${a.id} ${a.subject} (${t("severity." + a.severity)})`).join(", ") || t("common.none")),
            ),
          ),
        ),
        w.problems && w.problems.length ? el("div", { class: "error" }, ...w.problems.map((p) => el("div", {}, p))) : null,
      );
    } catch (error) {
      box.replaceChildren(el("p", { class: "muted" }, G.problem(error)));
    }
    loadRisks().catch((e) => toast(G.problem(e), "error"));
  }

  /* ---- residents (staff only: personal data) ---- */
  async function loadResidents() {
    const list = await api(PATHS.residents);
    $("resident-list").replaceChildren(
      list.length === 0
        ? el("p", { class: "muted" }, t("risk.no_residents"))
        : el(
            "table",
            { id: "resident-table" },
            el("tr", {}, ...["risk.resident_name", "risk.unit", "risk.phone", "risk.living_alone", "risk.activity_devices", "risk.welfare_after"].map((k) => el("th", {}, t(k)))),
            ...list
              .sort((a, b) => Number(b.living_alone) - Number(a.living_alone))
              .map((r) =>
                el(
                  "tr",
                  { dataset: { resident: r.id, alone: r.living_alone ? "1" : "0" }, class: r.living_alone ? "alone" : null },
                  el("td", {}, r.name),
                  el("td", {}, `${r.building} / ${r.unit}`),
                  el("td", {}, r.phone || t("common.none")),
                  el("td", {}, r.living_alone ? t("risk.alone_yes") : t("risk.alone_no")),
                  el("td", {}, r.activity_devices.join(", ") || t("common.none")),
                  el("td", {}, t("risk.hours", { h: r.welfare_after_h })),
                ),
              ),
          ),
    );
  }

  /* ---- drills ---- */
  async function loadDrills() {
    const list = await api(PATHS.drills);
    const drills = Array.isArray(list) ? list : list.drills || [];
    $("drill-list").replaceChildren(
      drills.length === 0
        ? el("p", { class: "muted" }, t("risk.no_drills"))
        : el(
            "table",
            { id: "drill-table" },
            el("tr", {}, ...["risk.scenario", "risk.site", "risk.drill_status", "risk.started", "risk.expected_raised", "risk.report"].map((k) => el("th", {}, t(k)))),
            ...drills.map((d) =>
              el(
                "tr",
                { dataset: { drill: d.id, status: d.status } },
                el("td", {}, d.scenario),
                el("td", {}, d.site),
                el("td", {}, t("risk.drill." + d.status) + (d.passed === false ? " ✗" : d.passed ? " ✓" : "")),
                el("td", {}, formatTime(d.started_at || d.created_at, true, d.site)),
                el("td", {}, `${(d.expected || []).length} / ${(d.raised || []).length}`),
                el("td", {}, el("a", { href: G.PATHS.afterAction("drill", d.id, "html"), target: "_blank", class: "report-html" }, "HTML"), " · ", el("a", { href: G.PATHS.afterAction("drill", d.id, "pdf"), target: "_blank", class: "report-pdf" }, "PDF")),
              ),
            ),
          ),
    );
  }
  async function fillDrillForm() {
    const orgs = await api(G.PATHS.orgs());
    const sites = [...new Set(orgs.map((o) => o.site))].sort();
    $("drill-site").replaceChildren(...sites.map((s) => el("option", { value: s }, s)));
    let names = [];
    try {
      const found = await api(PATHS.scenarios);
      names = found.map((s) => (typeof s === "string" ? s : s.name));
    } catch (error) {
      console.warn("scenarios", error);
    }
    $("drill-scenario").replaceChildren(...names.map((n) => el("option", { value: n }, tOr("risk.scenario." + n, n))));
  }
  $("drill-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("drill-error").textContent = "";
    const participants = $("drill-participants").value.split(/[\s,，]+/).filter(Boolean);
    try {
      const drill = await api(PATHS.drills, { method: "POST", json: { site: $("drill-site").value, scenario: $("drill-scenario").value, participants, note: $("drill-note").value.trim() || null } });
      toast(t("risk.drill_started", { id: drill.id }), "ok");
      await loadDrills();
    } catch (error) {
      $("drill-error").textContent = G.problem(error);
    }
  });

  /* ---- statistics: simple tables with CSS bars ---- */
  function bars(title, counts, label, id) {
    const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
    const max = Math.max(1, ...entries.map(([, n]) => n));
    return el(
      "div",
      { class: "stat-block", id },
      el("h3", {}, t(title)),
      entries.length === 0
        ? el("p", { class: "muted" }, t("common.none"))
        : el(
            "table",
            { class: "bars" },
            ...entries.map(([key, n]) =>
              el("tr", { dataset: { key } }, el("td", { class: "label" }, label(key)), el("td", { class: "bar-cell" }, el("div", { class: "hbar", style: `width:${(100 * n) / max}%` })), el("td", { class: "count" }, String(n))),
            ),
          ),
    );
  }
  async function loadStats() {
    const s = await api(PATHS.stats($("stats-drills").checked));
    const rt = s.response_times || {};
    $("stats").replaceChildren(
      el(
        "div",
        { class: "stats-grid" },
        bars("risk.by_category", s.by_category, (k) => G.categoryName(k), "stats-category"),
        bars("risk.by_building", s.by_building, (k) => k || t("common.none"), "stats-building"),
        bars("risk.by_month", Object.fromEntries(Object.entries(s.by_month || {}).sort()), (k) => k, "stats-month"),
        el(
          "div",
          { class: "stat-block", id: "stats-sla" },
          el("h3", {}, t("risk.sla")),
          el(
            "table",
            {},
            el("tr", {}, ...["gov.org", "risk.dispatched", "risk.on_time", "risk.late", "risk.compliance"].map((k) => el("th", {}, t(k)))),
            ...(s.sla || []).map((o) =>
              el(
                "tr",
                { dataset: { org: o.org_id } },
                el("td", { class: "org" }, G.orgOf(o)),
                el("td", {}, String(o.dispatched)),
                el("td", {}, String(o.on_time)),
                el("td", {}, String(o.late)),
                el("td", {}, o.compliance === null || o.compliance === undefined ? t("common.none") : el("span", {}, Math.round(o.compliance * 100) + "%", el("div", { class: "hbar" + (o.compliance < 0.8 ? " late" : ""), style: `width:${o.compliance * 100}%` }))),
              ),
            ),
          ),
        ),
        el(
          "div",
          { class: "stat-block", id: "stats-times" },
          el("h3", {}, t("risk.response_times")),
          el(
            "table",
            {},
            el("tr", {}, el("th", {}), el("th", {}, t("risk.p50")), el("th", {}, t("risk.p90"))),
            ...["ack", "arrive", "resolve"].map((stage) => el("tr", { dataset: { stage } }, el("td", {}, t("gov.stage." + stage)), el("td", {}, formatDuration(rt[stage + "_p50_s"])), el("td", {}, formatDuration(rt[stage + "_p90_s"])))),
          ),
        ),
      ),
      el("p", { class: "muted" }, t(s.drills_excluded === false ? "risk.drills_included" : "risk.drills_excluded")),
    );
  }
  $("stats-drills").addEventListener("change", () => loadStats().catch((e) => toast(G.problem(e), "error")));

  Linli.tabs({ risks: loadRisks, residents: loadResidents, drills: () => Promise.all([loadDrills(), fillDrillForm()]), stats: loadStats });
  await loadRisks().catch((e) => $("risk-list").replaceChildren(el("p", { class: "muted" }, G.problem(e))));
  const tab = new URLSearchParams(location.search).get("tab");
  if (tab) document.querySelector(`#tabs button[data-tab="${CSS.escape(tab)}"]`)?.click();
  document.body.dataset.ready = "1";
})();
