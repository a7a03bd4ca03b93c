/* Developer console: start/stop simulator scenarios, watch MQTT messages and the alerts they cause. */
"use strict";
(async () => {
  const { t, api, el, formatTime, toast, errorText } = Linli;
  await Linli.init();
  let lastSeq = 0;
  let paused = false;
  const shown = [];
  const alerts = new Map();

  async function loadScenarios() {
    const box = document.getElementById("scenarios");
    try {
      const list = await api("/api/dev/scenarios");
      if (list.length === 0) {
        box.replaceChildren(el("p", { class: "muted" }, t("dev.no_scenarios")));
        return;
      }
      box.replaceChildren(
        ...list.map((s) =>
          el(
            "div",
            { class: "scenario", dataset: { scenario: s.name } },
            el("div", {}, el("div", {}, s.name), el("div", { class: "muted" }, s.running ? t("dev.running") : s.returncode !== null ? t("dev.finished", { code: s.returncode }) : t("dev.idle"))),
            el("button", { class: "btn " + (s.running ? "danger" : "ok"), onclick: () => toggle(s) }, t(s.running ? "dev.stop" : "dev.start")),
          ),
        ),
      );
      const running = list.find((s) => s.output_tail);
      document.getElementById("scenario-output").textContent = running ? running.output_tail : "";
    } catch (error) {
      box.replaceChildren(el("p", { class: "muted" }, errorText(error)));
    }
  }
  async function toggle(s) {
    try {
      await api(`/api/dev/scenarios/${encodeURIComponent(s.name)}/${s.running ? "stop" : "start"}`, { method: "POST" });
    } catch (error) {
      toast(errorText(error), "error");
    }
    loadScenarios();
  }

  async function poll() {
    try {
      const body = await api(`/api/dev/messages?after=${lastSeq}&limit=200`);
      lastSeq = body.last_seq;
      document.getElementById("broker").textContent = body.connected ? t("dev.connected") : t("dev.disconnected");
      if (!paused) {
        shown.push(...body.messages);
        shown.splice(0, Math.max(0, shown.length - 300));
        render();
      }
    } catch (error) {
      document.getElementById("broker").textContent = errorText(error);
    }
  }
  function render() {
    const filter = document.getElementById("topic-filter").value.trim();
    const box = document.getElementById("messages");
    box.replaceChildren(
      ...shown
        .filter((m) => !filter || m.topic.includes(filter))
        .slice(-150)
        .reverse()
        .map((m) => el("div", { class: "msg", dataset: { channel: m.channel || "" } }, el("span", { class: "muted" }, formatTime(m.ts, false) + " "), el("span", { class: "topic" }, m.topic), m.retained ? " (retained)" : "", "\n", m.payload)),
    );
  }
  document.getElementById("topic-filter").addEventListener("input", render);
  document.getElementById("pause").addEventListener("click", (event) => {
    paused = !paused;
    event.target.textContent = t(paused ? "dev.resume" : "dev.pause");
  });

  function renderAlerts() {
    const box = document.getElementById("dev-alerts");
    box.replaceChildren(
      ...[...alerts.values()]
        .sort((a, b) => b.id - a.id)
        .map((a) => el("div", { class: "alert-card", dataset: { alertId: a.id } }, el("div", { class: "bar " + a.severity }), el("div", {}, el("div", { class: "title" }, `${a.rule_id} · ${a.subject}`), el("div", { class: "meta" }, `${t("status." + a.status)} · ${formatTime(a.raised_at, false)}`)), el("span", {}, ""))),
    );
  }
  Linli.stream((event) => {
    if (event.type === "alert" && event.alert) {
      alerts.set(event.alert.id, event.alert);
      renderAlerts();
    }
  });

  await loadScenarios();
  setInterval(poll, 1000);
  setInterval(loadScenarios, 5000);
  poll();
  document.body.dataset.ready = "1";
})();
