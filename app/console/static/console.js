// The console's live parts: SLA countdowns, and reloading the [data-live] regions when the
// server-sent signature changes (GET <body data-events>). A region with data-version is
// replaced only when its version changed, so a form being typed into survives unrelated updates.
(function () {
  "use strict";

  function fmt(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    var parts = [[Math.floor(seconds / 86400), "d"], [Math.floor(seconds % 86400 / 3600), "h"],
                 [Math.floor(seconds % 3600 / 60), "min"], [seconds % 60, "s"]];
    var shown = parts.filter(function (p) { return p[0]; }).slice(0, 2)
                     .map(function (p) { return p[0] + " " + p[1]; });
    return shown.join(" ") || "0 s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = (Date.parse(el.dataset.due) - now) / 1000;
      if (isNaN(left)) return;
      el.textContent = left < 0 ? "overdue by " + fmt(left) : "in " + fmt(left);
      el.classList.toggle("overdue", left < 0);
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var since = (now - Date.parse(el.dataset.since)) / 1000;
      if (!isNaN(since)) el.textContent = fmt(since);
    });
  }

  var refreshing = false, again = false;

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var focusedId = document.activeElement && document.activeElement.id;
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var next = old.id && fresh.getElementById(old.id);
          if (!next) return;
          if (old.dataset.version !== undefined && old.dataset.version === next.dataset.version) return;
          old.replaceWith(next);
          if (window.htmx) window.htmx.process(next);
        });
        // Regions new on the page (a decide panel that appeared) are added where the page has them.
        if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
        var status = document.getElementById("live-status");
        if (status) status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
        tick();
      })
      .catch(function () { /* the next change retries */ })
      .finally(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  function listen() {
    var url = document.body.dataset.events;
    if (!url || !window.EventSource) return;
    var current = document.body.dataset.signature;
    var source = new EventSource(url);
    source.addEventListener("change", function (event) {
      if (event.data === current) return;
      current = event.data;
      document.body.dataset.signature = current;
      refresh();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    listen();
  });
  // After an htmx swap (a decision, a claim) the page's signature is the new one.
  document.addEventListener("htmx:afterSwap", function () { tick(); });
})();
