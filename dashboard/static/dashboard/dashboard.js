/* Draws the admin pages' Plotly figures (built server-side by dashboard.charts and
   dashboard.report_charts) into their containers, in the admin's light or dark theme,
   and re-submits the filter when a select changes. No inline script, no CDN. */
(function () {
  "use strict";

  /* Timing marks for benchmarks/bench_admin_cold.py: plotly.js evaluated (this deferred
     script runs right after it), charts started, every chart drawn. */
  performance.mark("dashboard-js");

  var AXIS = /^[xy]axis\d*$/;

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  /* The admin's theme: <html data-theme="dark|light|auto">, "auto" following the OS. */
  function isDark() {
    var theme = document.documentElement.getAttribute("data-theme") || "auto";
    if (theme === "dark") { return true; }
    if (theme === "light") { return false; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  function themed(layout) {
    var dark = isDark();
    var text = cssVar("--body-fg", dark ? "#eeeeee" : "#333333");
    var grid = dark ? "rgba(255,255,255,0.14)" : "#e5e7eb";
    var line = dark ? "rgba(255,255,255,0.28)" : "#d1d5db";
    var copy = JSON.parse(JSON.stringify(layout));
    copy.paper_bgcolor = "rgba(0,0,0,0)";
    copy.plot_bgcolor = "rgba(0,0,0,0)";
    copy.font = Object.assign({}, copy.font || {}, { color: text });
    copy.hoverlabel = Object.assign({}, copy.hoverlabel || {}, {
      bgcolor: dark ? "#1f2937" : "#ffffff", font: { color: text }
    });
    Object.keys(copy).forEach(function (key) {
      if (AXIS.test(key)) {
        copy[key] = Object.assign({}, copy[key], { gridcolor: grid, zerolinecolor: line, linecolor: line });
      }
    });
    return copy;
  }

  var drawn = [];

  function renderCharts() {
    var source = document.getElementById("dashboard-charts-data");
    if (!source || typeof window.Plotly === "undefined") {
      return;
    }
    performance.mark("charts-start");
    var charts = JSON.parse(source.textContent);
    var plotted = [];
    charts.forEach(function (chart) {
      var target = document.getElementById("chart-" + chart.key);
      if (!target) {
        return;
      }
      var config = { displaylogo: false, responsive: true };
      drawn.push({ target: target, figure: chart.figure });
      plotted.push(window.Plotly.newPlot(target, chart.figure.data, themed(chart.figure.layout), config).then(function () {
        target.setAttribute("data-rendered", "true");
        target.setAttribute("data-theme", isDark() ? "dark" : "light");
      }));
    });
    Promise.all(plotted).then(function () { performance.mark("charts-drawn"); });
  }

  function redrawForTheme() {
    drawn.forEach(function (chart) {
      window.Plotly.react(chart.target, chart.figure.data, themed(chart.figure.layout)).then(function () {
        chart.target.setAttribute("data-theme", isDark() ? "dark" : "light");
      });
    });
  }

  function followTheme() {
    new MutationObserver(redrawForTheme).observe(document.documentElement, {
      attributes: true, attributeFilter: ["data-theme"]
    });
    if (window.matchMedia) {
      var query = window.matchMedia("(prefers-color-scheme: dark)");
      if (query.addEventListener) { query.addEventListener("change", redrawForTheme); }
    }
  }

  function autoSubmitFilter() {
    var form = document.getElementById("dashboard-filter");
    if (!form) {
      return;
    }
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.name === "window") {
          form.querySelectorAll("input[type=date]").forEach(function (input) { input.value = ""; });
        }
        form.submit();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    autoSubmitFilter();
    renderCharts();
    followTheme();
  });
}());
