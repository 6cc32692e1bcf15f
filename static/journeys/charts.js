// Draws every <canvas data-chart="..."> from the JSON in the <script> its data-source names.
// No inline scripts: chart data travels in json_script blocks.
(function () {
  "use strict";
  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.source);
    if (!source || typeof Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var kind = canvas.dataset.chart;
    var datasets = (data.series || []).map(function (s) {
      return { label: s.label, data: s.values, borderWidth: 2, fill: false, tension: 0.2 };
    });
    var config = { type: kind, data: { labels: data.labels, datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: datasets.length > 1 || kind === "radar" } } } };
    if (kind === "bar" && canvas.dataset.horizontal) { config.options.indexAxis = "y"; }
    if (kind === "radar") { config.options.scales = { r: { min: 0, max: 5, ticks: { stepSize: 1 } } }; }
    new Chart(canvas, config);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
