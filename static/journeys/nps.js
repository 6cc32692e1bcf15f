// NPS campaign page: polls the send job's progress until it is done, then reloads once so the
// answers and skipped reasons are current.
(function () {
  "use strict";
  function poll(box) {
    fetch(box.dataset.npsProgress, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        box.querySelector("[data-field=bar]").value = data.percent;
        ["processed", "total", "sent", "skipped"].forEach(function (name) {
          box.querySelector("[data-field=" + name + "]").textContent = data[name];
        });
        if (data.status === "done") { window.location.reload(); return; }
        window.setTimeout(function () { poll(box); }, 2000);
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-nps-progress]");
    if (box && box.dataset.status !== "done") { window.setTimeout(function () { poll(box); }, 1000); }
  });
})();
