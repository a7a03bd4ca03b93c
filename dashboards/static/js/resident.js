/* Resident page (mobile first): report a problem or ask for a service, with a photo from the
   phone's camera; follow my reports; confirm and rate a resolved one, or reopen it. */
"use strict";
(async () => {
  const { t, api, el, formatTime, toast } = Linli;
  const G = LinliGov;
  await Linli.init({ roles: ["resident", "manager", "admin"] });
  const $ = (id) => document.getElementById(id);
  const open = new Set(); // reports whose detail is unfolded

  /* ---- the form: category from the catalogue; site and building from the organisations ---- */
  const items = await G.loadCatalogue();
  $("r-category").replaceChildren(
    ...[...items.values()]
      .filter((item) => item.category !== "safety_alert")
      .map((item) => el("option", { value: item.category }, G.categoryName(item.category))),
  );
  const orgs = await api(G.PATHS.orgs());
  const buildings = new Map(); // site → Set of buildings
  for (const org of orgs) {
    const set = buildings.get(org.site) || new Set();
    org.buildings.forEach((b) => set.add(b));
    buildings.set(org.site, set);
  }
  $("r-site").replaceChildren(...[...buildings.keys()].sort().map((s) => el("option", { value: s }, s)));
  $("r-site-label").classList.toggle("hidden", buildings.size === 1);
  function fillBuildings() {
    const set = buildings.get($("r-site").value) || new Set();
    $("r-building").replaceChildren(el("option", { value: "" }, t("common.none")), ...[...set].sort().map((b) => el("option", { value: b }, b)));
  }
  $("r-site").addEventListener("change", fillBuildings);
  fillBuildings();

  let photo = null;
  $("r-photo").addEventListener("change", async () => {
    const file = $("r-photo").files[0];
    photo = null;
    $("r-photo-info").textContent = "";
    if (!file) return;
    try {
      photo = await G.downscale(file, 1600);
      $("r-photo-info").textContent = t("resident.photo_ready", { w: photo.width, h: photo.height });
      $("r-photo-info").dataset.width = photo.width;
      $("r-photo-info").dataset.height = photo.height;
    } catch (error) {
      $("r-photo-info").textContent = t("resident.photo_bad");
    }
  });

  $("report-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("r-error").textContent = "";
    if (!$("r-site").value) {
      $("r-error").textContent = t("resident.no_site");
      return;
    }
    const body = {
      site: $("r-site").value,
      category: $("r-category").value,
      building: $("r-building").value || null,
      location: $("r-location").value.trim(),
      description: $("r-description").value.trim(),
    };
    if (photo) Object.assign(body, { photo_b64: photo.b64, photo_type: "image/jpeg" });
    $("r-submit").disabled = true;
    try {
      const made = await api(G.PATHS.reports, { method: "POST", json: body });
      toast(t("resident.sent", { id: made.id }), "ok");
      event.target.reset();
      fillBuildings();
      photo = null;
      $("r-photo-info").textContent = "";
      open.add(made.id);
      await loadMine();
    } catch (error) {
      $("r-error").textContent = G.problem(error);
    } finally {
      $("r-submit").disabled = false;
    }
  });

  /* ---- my reports ---- */
  async function loadMine() {
    const list = await api(G.PATHS.incidents({ mine: "1" }));
    const box = $("my-reports");
    if (list.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, t("resident.none")));
      return;
    }
    box.replaceChildren(...list.map((incident) => card(incident)));
    for (const incident of list) if (open.has(incident.id)) await unfold(incident.id);
  }
  function card(incident) {
    return el(
      "div",
      { class: "gov-card", id: "report-" + incident.id, dataset: { incident: incident.id, state: incident.state } },
      el(
        "div",
        { class: "gov-card-head", onclick: () => toggle(incident.id) },
        el("div", {}, el("strong", {}, G.categoryName(incident.category)), " ", G.stateBadge(incident)),
        el("div", { class: "muted" }, `#${incident.id} · ${formatTime(incident.created_at, true, incident.site)} · ${G.place(incident)}`),
      ),
      el("div", { class: "gov-card-body", id: "report-body-" + incident.id }),
    );
  }
  async function toggle(id) {
    if (open.has(id)) {
      open.delete(id);
      $("report-body-" + id).replaceChildren();
      return;
    }
    open.add(id);
    await unfold(id);
  }
  async function unfold(id) {
    const body = $("report-body-" + id);
    if (!body) return;
    try {
      const incident = await api(G.PATHS.incident(id));
      body.replaceChildren(
        G.facts(incident, [
          ["resident.description", incident.description],
          ["gov.org", G.orgOf(incident)],
          ["gov.due", G.when(incident.due_at, incident)],
          ["gov.resolved_at", G.when(incident.resolved_at, incident)],
          ["gov.disposal", incident.disposal_note],
          ["gov.rating", incident.rating ? "★".repeat(incident.rating) : null],
        ]),
        G.photos(incident),
        feedback(incident),
        el("h3", {}, t("gov.timeline")),
        G.timeline(incident),
      );
    } catch (error) {
      body.replaceChildren(el("p", { class: "muted" }, G.problem(error)));
    }
  }

  /* A resolved report: rate it (1–5 stars) and confirm, or reopen it with a reason. */
  function feedback(incident) {
    const can = new Set(incident.allowed_actions || []);
    if (incident.state !== "resolved" || incident.confirmed_at) return null;
    let rating = 0;
    const stars = el("div", { class: "stars", role: "radiogroup", "aria-label": t("gov.rating") });
    const paint = () => stars.querySelectorAll("button").forEach((b) => b.classList.toggle("on", Number(b.dataset.star) <= rating));
    for (let n = 1; n <= 5; n += 1) {
      stars.append(el("button", { type: "button", class: "star", dataset: { star: n }, "aria-label": t("resident.stars", { n }), onclick: () => { rating = n; paint(); } }, "★"));
    }
    const comment = el("input", { class: "confirm-comment", maxlength: 4000, placeholder: t("resident.comment") });
    const reason = el("input", { class: "reopen-reason", maxlength: 2000, placeholder: t("resident.reopen_reason") });
    const error = el("div", { class: "error", role: "alert" });
    return el(
      "div",
      { class: "feedback" },
      el("h3", {}, t("resident.how_was_it")),
      stars,
      comment,
      el("button", {
        class: "btn big ok confirm", type: "button", disabled: can.size > 0 && !can.has("confirm"),
        onclick: async () => {
          if (!rating) {
            error.textContent = t("resident.pick_rating");
            return;
          }
          await act(incident.id, "confirm", { rating, comment: comment.value.trim() || null }, error);
        },
      }, t("resident.confirm")),
      el("div", { class: "row" }, reason, el("button", {
        class: "btn ghost reopen", type: "button",
        onclick: async () => {
          if (!reason.value.trim()) {
            error.textContent = t("resident.need_reason");
            return;
          }
          await act(incident.id, "reopen", { reason: reason.value.trim() }, error);
        },
      }, t("resident.reopen"))),
      error,
    );
  }
  async function act(id, action, body, error) {
    try {
      await api(G.PATHS.action(id, action), { method: "POST", json: body });
      toast(t("gov.done." + action), "ok");
      await loadMine();
    } catch (err) {
      error.textContent = G.problem(err);
    }
  }

  await loadMine();
  /* Follow the status live; not while the resident is typing or rating in the list. */
  G.live(() => ($("my-reports").contains(document.activeElement) ? false : loadMine()), 60);
  document.body.dataset.ready = "1";
})();
