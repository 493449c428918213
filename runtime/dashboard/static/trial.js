// A trial's page: the per-epoch metrics as a plot (accuracies left, losses right).
(function () {
  "use strict";
  const epochs = JSON.parse(document.getElementById("epochs").textContent);
  const canvas = document.getElementById("chart-epochs");
  if (!canvas || !epochs.length) return;
  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
  const keys = Object.keys(epochs[0]).filter((k) => k !== "epoch" && k !== "lr" && k !== "seconds" &&
    epochs.every((e) => typeof e[k] === "number"));
  const axis = (k) => (k.endsWith("_loss") ? "loss" : "y");
  new Chart(canvas, {
    type: "line",
    data: {datasets: keys.map((k, i) => ({label: k, yAxisID: axis(k),
      data: epochs.map((e, j) => ({x: e.epoch === undefined ? j + 1 : e.epoch, y: e[k]})),
      borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
      borderDash: k.startsWith("train") ? [5, 3] : [], pointRadius: 3}))},
    options: {animation: false, responsive: true, maintainAspectRatio: false,
      scales: {x: {type: "linear", title: {display: true, text: "epoch"}, ticks: {precision: 0}},
        y: {position: "left", title: {display: true, text: "accuracy / perplexity"}},
        loss: {position: "right", title: {display: true, text: "loss"}, grid: {drawOnChartArea: false}}}},
  });
})();
