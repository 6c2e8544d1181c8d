// dbproc dashboard: live updates. The server says "change" on /api/events/stream when
// something was recorded; the page then fetches itself and swaps its [data-live] parts.
(function () {
  "use strict";
  var status = document.getElementById("live-status");
  function show(text) { if (status) { status.textContent = text; } }
  var parts = document.querySelectorAll("[data-live]");
  if (!parts.length || !window.EventSource) { show("static"); return; }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { headers: { "X-Dbproc-Live": "1" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (fresh) { old.replaceWith(document.importNode(fresh, true)); }
        });
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
        show("live");
      })
      .catch(function () { show("update failed"); })
      .finally(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var source = new EventSource("/api/events/stream");
  source.addEventListener("hello", function () { show("live"); });
  source.addEventListener("change", refresh);
  source.onerror = function () { show("reconnecting"); };
  window.addEventListener("pagehide", function () { source.close(); });
})();
