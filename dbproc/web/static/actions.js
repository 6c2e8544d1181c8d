// dbproc dashboard: actions (verdicts, retries). The token goes in the Authorization
// header, never a cookie; it is kept for this tab only (sessionStorage).
(function () {
  "use strict";
  document.querySelectorAll("form.action").forEach(function (form) {
    var tokenField = form.elements.namedItem("token");
    var saved = window.sessionStorage.getItem("dbproc-token");
    if (tokenField && saved) { tokenField.value = saved; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var out = form.querySelector("output");
      var body = {};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.name !== "token") { body[el.name] = el.value; }
      });
      var token = tokenField ? tokenField.value.trim() : "";
      if (token) { window.sessionStorage.setItem("dbproc-token", token); }
      var headers = { "Content-Type": "application/json" };
      if (token) { headers.Authorization = "Bearer " + token; }
      fetch(form.dataset.action, { method: "POST", headers: headers, body: JSON.stringify(body) })
        .then(function (r) {
          return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data }; });
        })
        .then(function (res) {
          out.className = res.ok ? "ok" : "bad";
          out.textContent = res.ok ? "done" + (res.data.queued === false ? " (already queued)" : "")
            : res.status + ": " + res.data.error.message;
        })
        .catch(function (err) { out.className = "bad"; out.textContent = String(err); });
    });
  });
})();
