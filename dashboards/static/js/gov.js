/* Governance screens: what the incident board, the whistle board, the resident and the responder
   pages share — API paths, state badges, the timeline, photos, the service catalogue. */
"use strict";
const LinliGov = (() => {
  const { t, tOr, el, formatTime, api } = Linli;
  const PATHS = {
    incidents: (query) => "/api/gov/incidents?" + new URLSearchParams(query || {}),
    incident: (id) => `/api/gov/incidents/${id}`,
    action: (id, action) => `/api/gov/incidents/${id}/${action}`,
    photo: (id, pid) => `/api/gov/incidents/${id}/photos/${pid}`,
    reports: "/api/gov/reports",
    catalogue: "/api/gov/catalogue",
    orgs: (query) => "/api/gov/organisations?" + new URLSearchParams(query || {}),
    whistles: (query) => "/api/gov/whistles?" + new URLSearchParams(query || {}),
    stage: (id) => `/api/gov/whistles/${id}/report`,
    afterAction: (kind, id, ext) => `/api/gov/reports/after-action/${kind}/${id}.${ext}?lang=${Linli.state.locale === "en" ? "en" : "zh"}`,
  };
  const STATES = ["reported", "open", "dispatched", "in_progress", "resolved", "closed", "cancelled"];
  const STAGES = ["ack", "arrive", "resolve"];
  const UNRESOLVED = new Set(["reported", "open", "dispatched", "in_progress"]);

  const catalogue = new Map();
  async function loadCatalogue() {
    for (const item of await api(PATHS.catalogue)) catalogue.set(item.category, item);
    return catalogue;
  }
  function categoryName(category) {
    const item = catalogue.get(category);
    if (!item) return tOr("gov.category." + category, category);
    return Linli.state.locale === "en" ? item.name_en : item.name_zh;
  }
  function orgName(org) {
    return Linli.state.locale === "en" && org.name_en ? org.name_en : org.name;
  }
  /* The organisation an incident, a whistle or a timeline entry names, in the page's language
     (its Chinese name when it has no English one). */
  function orgOf(item) {
    if (!item || !item.org_name) return null;
    return Linli.state.locale === "en" && item.org_name_en ? item.org_name_en : item.org_name;
  }

  function stateBadge(incident, id) {
    return el("span", { class: "badge st gov-state state-" + incident.state, id: id || null, dataset: { state: incident.state } }, t("gov.state." + incident.state));
  }
  function overdueBadge(incident) {
    return incident.overdue ? el("span", { class: "badge overdue" }, t("gov.overdue")) : null;
  }

  /* One timeline entry in words: "张三 · 派单 → 物业" etc. */
  function describe(entry) {
    const d = entry.detail || {};
    const words = [tOr("gov.action." + entry.action, entry.action)];
    if (d.to && d.from && d.to !== d.from) words.push("→ " + t("gov.state." + d.to));
    for (const key of ["note", "reason", "comment", "text", "override_reason"]) if (d[key]) words.push("· " + d[key]);
    if (d.rating) words.push("· " + "★".repeat(d.rating));
    if (d.org_name) words.push("· " + orgOf(d));
    return words.join(" ");
  }
  function timeline(incident, id) {
    return el(
      "ul",
      { class: "timeline", id: id || null },
      ...(incident.timeline || []).map((entry) =>
        el(
          "li",
          { dataset: { action: entry.action } },
          el("div", { class: "when" }, formatTime(entry.ts, true, incident.site) + " · " + entry.actor),
          el("div", {}, describe(entry)),
        ),
      ),
    );
  }
  function photos(incident) {
    if (!incident.photos || incident.photos.length === 0) return null;
    return el(
      "div",
      { class: "photos" },
      ...incident.photos.map((p) =>
        el("a", { href: PATHS.photo(incident.id, p.id), target: "_blank" }, el("img", { src: PATHS.photo(incident.id, p.id), alt: t("gov.photo"), dataset: { photo: p.id } })),
      ),
    );
  }
  function facts(incident, fields) {
    const dl = el("dl");
    for (const [label, value] of fields) {
      dl.append(el("dt", {}, t(label)), el("dd", {}, value === null || value === undefined || value === "" ? t("common.none") : value));
    }
    return dl;
  }
  /* What an incident is about, in the page's language: a resident's report by its category and
     location (its stored title is in the catalogue's Chinese), others by their title. */
  function title(incident) {
    if (incident.source === "report") return [categoryName(incident.category), incident.location].filter(Boolean).join(" · ");
    return incident.title;
  }
  function place(incident) {
    return [incident.building, incident.zone, incident.location].filter(Boolean).join(" / ");
  }
  function when(iso, incident) {
    return iso ? formatTime(iso, true, incident && incident.site) : null;
  }

  /* A photo from the phone's camera, downscaled to at most `max` px on its longer side and
     re-encoded as JPEG in the browser before upload (phones take 12 MP pictures). */
  async function downscale(file, max) {
    const limit = max || 1600;
    const url = URL.createObjectURL(file);
    try {
      const image = new Image();
      image.src = url;
      await image.decode();
      const scale = Math.min(1, limit / Math.max(image.naturalWidth, image.naturalHeight));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(image.naturalWidth * scale));
      canvas.height = Math.max(1, Math.round(image.naturalHeight * scale));
      canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
      const data = canvas.toDataURL("image/jpeg", 0.85);
      return { b64: data.slice(data.indexOf(",") + 1), width: canvas.width, height: canvas.height };
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  /* A whistle's three stages: reported (time) or not yet (due time; red when overdue). */
  function stageCells(w) {
    return STAGES.map((stage) => {
      const done = w[{ ack: "acked_at", arrive: "arrived_at", resolve: "resolved_at" }[stage]];
      const due = w[stage + "_due"];
      const late = w.overdue_stage === stage;
      return el(
        "td",
        { class: "stage" + (done ? " done" : late ? " late" : " waiting"), dataset: { stage, done: done ? "1" : "0" } },
        done ? "✓ " + formatTime(done) : (late ? t("gov.whistle.overdue") : t("gov.whistle.not_reported")),
        done ? null : el("div", { class: "muted" }, t("gov.whistle.due", { time: formatTime(due) })),
      );
    });
  }
  function nextStage(w) {
    if (!w.acked_at) return "ack";
    if (!w.arrived_at) return "arrive";
    if (!w.resolved_at) return "resolve";
    return null;
  }

  /* Keep a screen current: refresh() runs when an incident changes (an "incident" event of the
     live stream; a burst is coalesced), when the stream (re)connects (whatever was missed
     meanwhile), and on a slow poll as a fallback. The poll period is pollS seconds unless
     localStorage "linli.gov.poll_s" says otherwise. refresh() may return a promise; false means
     "not now" (the user is typing): it is tried again 2 s later. Runs never overlap (a change
     during one runs it once more afterwards). */
  function live(refresh, pollS) {
    const stored = Number(localStorage.getItem("linli.gov.poll_s"));
    const period = (stored > 0 ? stored : pollS) * 1000;
    let timer = null;
    let running = false;
    let again = false;
    async function run() {
      timer = null;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        if ((await refresh()) === false && timer === null) timer = setTimeout(run, 2000);
      } catch (error) {
        console.warn("refresh", error);
      } finally {
        running = false;
      }
      if (again) {
        again = false;
        soon();
      }
    }
    function soon() {
      if (timer === null) timer = setTimeout(run, 150);
    }
    Linli.stream((event) => {
      if (event.type === "incident" || event.type === "hello") soon();
    });
    setInterval(run, period);
  }

  /* An API error in words, with the server's own message (e.g. why a close was refused). */
  function problem(error) {
    if (error instanceof Linli.ApiError && error.status === 422 && Array.isArray(error.detail)) {
      return t("common.error") + ": " + error.detail.map((d) => (d.loc || []).slice(-1)[0] + " — " + d.msg).join("; ");
    }
    return Linli.errorText(error);
  }

  return { PATHS, title, STATES, STAGES, UNRESOLVED, loadCatalogue, categoryName, orgName, orgOf, stateBadge, overdueBadge, timeline, photos, facts, place, when, downscale, stageCells, nextStage, problem, describe, live };
})();
