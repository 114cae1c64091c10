/* Draws the dashboard's Plotly figures (built server-side by dashboard.charts) into their
   containers, and re-submits the filter when a select changes. No inline script, no CDN. */
(function () {
  "use strict";

  function renderCharts() {
    var source = document.getElementById("dashboard-charts-data");
    if (!source || typeof window.Plotly === "undefined") {
      return;
    }
    var charts = JSON.parse(source.textContent);
    charts.forEach(function (chart) {
      var target = document.getElementById("chart-" + chart.key);
      if (!target) {
        return;
      }
      var config = { displaylogo: false, responsive: true };
      window.Plotly.newPlot(target, chart.figure.data, chart.figure.layout, config).then(function () {
        target.setAttribute("data-rendered", "true");
      });
    });
  }

  function autoSubmitFilter() {
    var form = document.getElementById("dashboard-filter");
    if (!form) {
      return;
    }
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    autoSubmitFilter();
    renderCharts();
  });
}());
