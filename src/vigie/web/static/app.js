// Draws every <canvas data-chart="..."> with Chart.js (shipped in /static/vendor).
// The data is the page's own (rendered by the server); nothing else is fetched.
"use strict";

const PALETTE = ["#1f5fa8", "#e07b1a", "#2e9e5b", "#c23b3b", "#7a4fb5", "#4a9bb5", "#8c6d31"];

function percent(unit) {
  return unit === "percentunit" ? (v) => (v * 100).toFixed(1) + " %" : undefined;
}

function draw(canvas) {
  const data = JSON.parse(canvas.dataset.chart);
  const bar = data.kind === "barchart";
  const datasets = data.series.map((s, i) => ({
    label: s.name.replace(/_/g, " "),
    data: s.values,
    backgroundColor: PALETTE[i % PALETTE.length],
    borderColor: PALETTE[i % PALETTE.length],
    borderWidth: bar ? 0 : 2,
    pointRadius: 0,
    spanGaps: true,
  }));
  const chart = new window.Chart(canvas, {
    type: bar ? "bar" : "line",
    data: { labels: data.labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      indexAxis: bar ? "y" : "x",
      scales: { [bar ? "x" : "y"]: { ticks: { callback: percent(data.unit) } } },
      plugins: { legend: { display: datasets.length > 1 } },
    },
  });
  canvas.dataset.drawn = String(data.labels.length);
  return chart;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("canvas[data-chart]").forEach(draw);
});
