"use strict";
(async () => {
  const { t, api } = Linli;
  await Linli.init({ auth: false });
  const next = new URLSearchParams(location.search).get("next");
  document.getElementById("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("error");
    error.textContent = "";
    const username = document.getElementById("username").value.trim();
    const password = document.getElementById("password").value;
    try {
      const result = await api("/api/auth/login", { method: "POST", json: { username, password } });
      const target = next && next.startsWith("/") && !next.startsWith("//") ? next : Linli.home(result.user.role);
      location.href = target;
    } catch (err) {
      if (err.status === 429) {
        error.textContent = t("login.locked", { s: 60 });
      } else {
        error.textContent = t("login.failed");
      }
    }
  });
  document.body.dataset.ready = "1";
})();
