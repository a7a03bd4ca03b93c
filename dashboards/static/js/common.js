/* Linli screens: shared helpers (i18n, API calls, time formatting, live stream, header).
   Plain ES2020, no build step. Every screen loads this file first. */
"use strict";

const Linli = (() => {
  const state = { locale: "zh-CN", catalog: {}, timeZone: "Asia/Shanghai", me: null, config: {} };

  function t(key, vars) {
    let text = Object.prototype.hasOwnProperty.call(state.catalog, key) ? state.catalog[key] : key;
    for (const [name, value] of Object.entries(vars || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  /* t() for a key that may not exist, e.g. reason codes: fall back to the raw value. */
  function tOr(key, fallback) {
    return Object.prototype.hasOwnProperty.call(state.catalog, key) ? state.catalog[key] : fallback;
  }

  function applyI18n(root) {
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n);
    });
    (root || document).querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    });
    (root || document).querySelectorAll("[data-i18n-title]").forEach((el) => {
      el.title = t(el.dataset.i18nTitle);
    });
    document.documentElement.lang = state.locale;
  }

  /* A time in the site's zone (Asia/Shanghai unless configured), e.g. 2026/11/28 02:28:40. */
  function formatTime(iso, withDate, site) {
    if (!iso) return t("common.none");
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const zones = (state.config && state.config.site_time_zones) || {};
    const timeZone = (site && zones[site]) || state.timeZone;
    const options = { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
    if (withDate !== false) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
    return new Intl.DateTimeFormat(state.locale, options).format(date);
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return t("common.none");
    const s = Math.round(seconds);
    if (s < 60) return s + (state.locale === "en" ? " s" : " 秒");
    if (s < 3600) return Math.round(s / 60) + (state.locale === "en" ? " min" : " 分钟");
    return (s / 3600).toFixed(1) + (state.locale === "en" ? " h" : " 小时");
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(typeof detail === "string" ? detail : JSON.stringify(detail));
      this.status = status;
      this.detail = detail;
    }
  }

  async function api(path, options) {
    const opts = Object.assign({ method: "GET", credentials: "same-origin", headers: {} }, options || {});
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    const response = await fetch(path, opts);
    if (response.status === 401 && !path.startsWith("/api/auth/login")) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      throw new ApiError(401, "not signed in");
    }
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) throw new ApiError(response.status, body && body.detail !== undefined ? body.detail : body);
    return body;
  }

  async function loadCatalog(locale) {
    const response = await fetch("/static/i18n/" + locale + ".json", { cache: "no-cache" });
    state.catalog = await response.json();
    state.locale = locale;
  }

  function chosenLocale(fallback) {
    const saved = localStorage.getItem("linli.locale");
    return saved === "en" || saved === "zh-CN" ? saved : fallback;
  }

  /* Load config + catalogue; unless auth is false, require a signed-in user (else go to /login);
     with roles, send a user of another role to their own screen. */
  async function init(options) {
    const opts = options || {};
    const config = await api("/api/ui/config");
    state.config = config;
    state.timeZone = config.time_zone;
    let fallback = config.default_locale;
    if (opts.auth !== false) {
      state.me = await api("/api/auth/me");
      fallback = state.me.locale || fallback;
    }
    if (state.me && opts.roles && !opts.roles.includes(state.me.role)) {
      location.replace(home(state.me.role));  /* not this role's screen: go to its own */
      await new Promise(() => {});
    }
    await loadCatalog(chosenLocale(fallback));
    applyI18n();
    frameHeader();
    if (state.me) {
      await loadNotes();
      stream((event) => {
        if (event.type === "notification") loadNotes();
      });
    }
    return state.me;
  }

  function toggleLocale() {
    localStorage.setItem("linli.locale", state.locale === "en" ? "zh-CN" : "en");
    location.reload();
  }

  async function logout() {
    try {
      await api("/api/auth/logout", { method: "POST" });
    } finally {
      location.href = "/login";
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /* The screens each role uses, in the header's navigation: residents see their own page (and
     visitor passes), responders theirs, managers and admins every screen. */
  const SCREENS = [
    { path: "/console", key: "app.console", roles: ["admin", "manager", "guard", "responder", "viewer"] },
    { path: "/incidents", key: "app.incidents", roles: ["admin", "manager"] },
    { path: "/risk", key: "app.risk", roles: ["admin", "manager"] },
    { path: "/responder", key: "app.responder", roles: ["admin", "manager", "responder"] },
    { path: "/resident", key: "app.resident", roles: ["admin", "manager", "resident"] },
    { path: "/gate", key: "app.gate", roles: ["admin", "manager", "guard"] },
    { path: "/gate", key: "app.visitor_pass", roles: ["resident"] },
    { path: "/dev", key: "app.dev", roles: ["admin"] },
  ];
  const HOME = { admin: "/console", manager: "/console", guard: "/gate", responder: "/responder", resident: "/resident", viewer: "/console" };
  function home(role) {
    return HOME[role] || "/console";
  }
  function screensFor(role) {
    return SCREENS.filter((s) => s.roles.includes(role));
  }

  /* The header every page shares: the page's <header class="top"> holds its title (and its own
     controls, e.g. the console's tabs); the screens nav and the user bar are added here. */
  function frameHeader() {
    const header = document.querySelector("header.top");
    if (!header) return;
    let nav = document.getElementById("screens");
    if (!nav) {
      nav = el("nav", { id: "screens", class: "screens" });
      const title = header.querySelector("h1");
      if (title) title.after(nav);
      else header.prepend(nav);
    }
    nav.replaceChildren(
      ...(state.me ? screensFor(state.me.role) : []).map((s) =>
        el("a", { href: s.path, class: location.pathname === s.path ? "active" : null, dataset: { screen: s.path } }, t(s.key)),
      ),
    );
    if (!document.getElementById("userbar")) header.append(el("div", { id: "userbar" }));
    renderHeader();
  }

  function renderHeader() {
    const bar = document.getElementById("userbar");
    if (!bar) return;
    bar.replaceChildren(
      state.me ? bell() : null,
      state.me ? el("span", { class: "who", id: "who" }, state.me.display_name + " · " + t("role." + state.me.role)) : null,
      el("span", { class: "conn" + (connected === null ? "" : connected ? " up" : " down"), id: "conn" }, connected === null ? "" : connected ? "● " + t("common.live") : "○ " + t("common.offline")),
      el("button", { class: "btn ghost", id: "lang", onclick: toggleLocale }, t("common.language")),
      state.me ? el("button", { class: "btn ghost", id: "logout", onclick: logout }, t("common.logout")) : null,
    );
  }

  /* Small inline SVG icons (no icon font or emoji font needed on kiosks). */
  function icon(name) {
    const paths = {
      bell: "M12 2a6 6 0 0 0-6 6v3.6L4.3 15A1 1 0 0 0 5.2 16.5h13.6a1 1 0 0 0 .9-1.5L18 11.6V8a6 6 0 0 0-6-6zm0 20a3 3 0 0 0 3-3H9a3 3 0 0 0 3 3z",
      person: "M12 12a5 5 0 1 0 0-10 5 5 0 0 0 0 10zm0 2c-4.4 0-8 2.2-8 5v3h16v-3c0-2.8-3.6-5-8-5z",
    };
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "icon icon-" + name);
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", paths[name]);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  /* In-app notifications for my role: a bell with the unseen count and a drop-down list. */
  const notes = { items: [], seen: Number(localStorage.getItem("linli.notes.seen") || 0) };
  function bell() {
    const count = notes.items.filter((n) => n.id > notes.seen).length;
    return el(
      "span",
      { class: "bell-wrap" },
      el("button", { class: "btn ghost bell", id: "bell", title: t("notes.title"), onclick: toggleNotes }, icon("bell"), count ? el("span", { class: "bell-count", id: "bell-count" }, String(count)) : null),
      el(
        "div",
        { class: "notes panel hidden", id: "notes" },
        notes.items.length === 0
          ? el("p", { class: "muted" }, t("notes.empty"))
          : notes.items.slice(0, 20).map((n) =>
              el(
                "div",
                { class: "note" + (n.id > notes.seen ? " unseen" : ""), dataset: { note: n.id } },
                el("span", { class: "badge sev-" + n.severity }, t("severity." + n.severity)),
                " ",
                state.locale === "en" ? n.title_en : n.title_zh,
                el("div", { class: "muted" }, formatTime(n.ts) + " · " + tOr("notes.reason." + n.reason, n.reason)),
              ),
            ),
      ),
    );
  }
  function toggleNotes() {
    const box = document.getElementById("notes");
    const opening = box.classList.contains("hidden");
    if (opening && notes.items.length) {
      notes.seen = Math.max(notes.seen, ...notes.items.map((n) => n.id));
      localStorage.setItem("linli.notes.seen", String(notes.seen));
      const badge = document.getElementById("bell-count");
      if (badge) badge.remove();
    }
    box.classList.toggle("hidden");
  }
  async function loadNotes() {
    try {
      notes.items = await api("/api/notifications?limit=20");
    } catch (error) {
      console.warn("notifications", error);
      return;
    }
    renderHeader();
  }

  let connected = null;
  function setConnected(ok) {
    connected = ok;
    const node = document.getElementById("conn");
    if (!node) return;
    node.textContent = ok ? "● " + t("common.live") : "○ " + t("common.offline");
    node.className = "conn " + (ok ? "up" : "down");
  }

  /* The live stream: calls every handler(event) for each JSON message; one connection per page,
     reconnected with backoff. */
  const handlers = [];
  let streaming = false;
  function stream(handler) {
    handlers.push(handler);
    if (streaming) return;
    streaming = true;
    let delay = 500;
    function connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + location.host + "/api/stream");
      socket.onopen = () => {
        delay = 500;
        setConnected(true);
      };
      socket.onmessage = (message) => {
        let event;
        try {
          event = JSON.parse(message.data);
        } catch (error) {
          console.error("stream message", error);
          return;
        }
        for (const fn of handlers) {
          try {
            fn(event);
          } catch (error) {
            console.error("stream handler", error);
          }
        }
      };
      socket.onclose = () => {
        setConnected(false);
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    connect();
  }

  /* A page's tabs: the buttons of #tabs show the [data-view] of the same name; loaders[name]()
     runs when its tab opens (errors shown as a toast). */
  function tabs(loaders) {
    document.querySelectorAll("#tabs button").forEach((button) => {
      button.addEventListener("click", () => {
        document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b === button));
        document.querySelectorAll("[data-view]").forEach((v) => v.classList.toggle("hidden", v.dataset.view !== button.dataset.tab));
        const loader = loaders[button.dataset.tab];
        if (loader) loader().catch((error) => toast(errorText(error), "error"));
      });
    });
  }

  function toast(text, kind) {
    let box = document.getElementById("toasts");
    if (!box) {
      box = el("div", { id: "toasts", class: "toasts" });
      document.body.append(box);
    }
    const item = el("div", { class: "toast " + (kind || "") }, text);
    box.append(item);
    setTimeout(() => item.remove(), 6000);
  }

  function errorText(error) {
    if (error instanceof ApiError && error.status === 403) return t("common.forbidden");
    return t("common.error") + ": " + (error && error.message ? error.message : String(error));
  }

  return { state, t, tOr, applyI18n, formatTime, formatDuration, api, init, el, icon, stream, toast, errorText, ApiError, home, tabs };
})();
