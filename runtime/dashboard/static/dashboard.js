// The search page: polls /api/state for what is new, keeps the trials, redraws.
(function () {
  "use strict";
  const settings = JSON.parse(document.getElementById("settings").textContent);
  const MAX_ROWS = 500; // table rows drawn at once (filter or sort to see others)
  const colour = {ok: "#1f77b4", repeat: "#9a9a9a", failed: "#d62728", best: "#2ca02c",
    over_budget: "#ff7f0e",
    front: "#d62728", quarters: ["#c6dbef", "#6baed6", "#2171b5", "#08306b"]};
  const model = {server: "", trials: [], steps: [], version: -1, overview: null,
    sort: {key: "id", dir: -1}, filter: "", status: ""};
  const charts = {};

  // --- formatting -----------------------------------------------------------------
  const count = (n) => (n === null || n === undefined ? "–" : n.toLocaleString("en-US"));
  const fixed = (x, d) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  function short(v) {
    for (const [size, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
      if (v >= size) return `${+(v / size).toPrecision(3)}${unit}`;
    }
    return String(v);
  }
  // Log-axis labels at 1, 2 and 5 times a power of ten only (the rest would overlap).
  function logTick(v) {
    const mantissa = v / 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5].some((k) => Math.abs(mantissa - k) < 1e-6) ? short(v) : "";
  }
  function duration(s) {
    if (s === null || s === undefined) return "–";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
  }
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function facts(target, pairs) {
    target.replaceChildren();
    for (const [key, value] of pairs) {
      target.append(el("dt", key), el("dd", String(value)));
    }
  }

  // --- charts -----------------------------------------------------------------------
  function chart(id, config) {
    const canvas = document.getElementById(id);
    config.options = Object.assign({animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {legend: {labels: {boxWidth: 12}}}}, config.options || {});
    charts[id] = new Chart(canvas, config);
    return charts[id];
  }
  const openTrial = (points) => (event, elements, c) => {
    if (!elements.length) return;
    const point = c.data.datasets[elements[0].datasetIndex].data[elements[0].index];
    if (point && point.id) window.location.href = `/trial/${point.id}`;
  };
  function scatter(label, colourOf, radius) {
    return {type: "scatter", label, data: [], backgroundColor: colourOf, borderColor: colourOf,
      pointRadius: radius, pointHoverRadius: radius + 2};
  }
  function line(label, colourOf, stepped) {
    return {type: "line", label, data: [], borderColor: colourOf, backgroundColor: colourOf,
      pointRadius: 0, borderWidth: 2, stepped: stepped || false};
  }
  function setUp() {
    const byTrial = {x: {type: "linear", title: {display: true, text: "trial"}}};
    chart("chart-reward", {type: "scatter", data: {datasets: [
      scatter("evaluated", colour.ok, 2), scatter("repeat", colour.repeat, 2),
      scatter("failed", colour.failed, 3), line("best so far", colour.best, true),
      scatter("over budget (never trained)", colour.over_budget, 3)]},
      options: {scales: Object.assign({y: {title: {display: true, text: "reward"}}}, byTrial),
        onClick: openTrial()}});
    chart("chart-accuracy", {type: "scatter", data: {datasets: [
      scatter("validation accuracy", colour.ok, 2), line("best so far", colour.best, true)]},
      options: {scales: Object.assign({y: {title: {display: true, text: "accuracy"}}}, byTrial),
        onClick: openTrial()}});
    chart("chart-quarters", {type: "bar", data: {labels: [], datasets: [1, 2, 3, 4].map((q) => ({
      label: `quarter ${q}`, data: [], backgroundColor: colour.quarters[q - 1]}))},
      options: {scales: {x: {title: {display: true, text: "reward"}},
        y: {title: {display: true, text: "trials"}}}}});
    chart("chart-steps", {type: "line", data: {datasets: []},
      options: {parsing: false, scales: {x: {type: "linear", title: {display: true, text: "step"}}}}});
    for (const cost of ["parameters", "macs"]) {
      chart(`chart-pareto-${cost}`, {type: "scatter", data: {datasets: [
        scatter("trials", "rgba(31,119,180,0.45)", 2),
        Object.assign(line("Pareto front", colour.front, "after"), {pointRadius: 3})]},
        options: {scales: {x: {type: "logarithmic", ticks: {callback: logTick, autoSkip: false},
          title: {display: true, text: cost === "macs" ? "multiply-adds" : "parameters"}},
          y: {title: {display: true, text: "accuracy"}}}, onClick: openTrial()}});
    }
    chart("chart-staleness", {type: "bar", data: {labels: [], datasets: [
      {label: "updates", data: [], backgroundColor: colour.ok}]},
      options: {scales: {x: {title: {display: true, text: "versions behind"}}}}});
  }
  function show(id, visible) {
    document.getElementById(id).parentElement.hidden = !visible;
    const note = document.getElementById(`${id}-empty`);
    if (note) note.hidden = visible;
  }

  function runningBest(trials, value) {
    const out = [];
    let best = -Infinity;
    for (const t of trials) {
      const v = value(t);
      if (v === null || v === undefined) continue;
      if (v > best) { best = v; }
      out.push({x: t.id, y: best, id: t.id});
    }
    return out;
  }
  function drawCharts() {
    const trials = model.trials.slice().sort((a, b) => a.id - b.id);
    const point = (t, y) => ({x: t.id, y, id: t.id});
    const reward = charts["chart-reward"].data.datasets;
    reward[0].data = trials.filter((t) => t.status === "ok").map((t) => point(t, t.reward));
    reward[1].data = trials.filter((t) => t.status === "repeat").map((t) => point(t, t.reward));
    reward[2].data = trials.filter((t) => t.status === "failed").map((t) => point(t, t.reward));
    reward[3].data = runningBest(trials, (t) => t.reward);
    reward[4].data = trials.filter((t) => t.status === "over_budget")
      .map((t) => point(t, t.reward));
    charts["chart-reward"].update();

    const measured = trials.filter((t) => t.status === "ok" && t.accuracy !== null);
    const accuracy = charts["chart-accuracy"].data.datasets;
    accuracy[0].data = measured.map((t) => point(t, t.accuracy));
    accuracy[1].data = runningBest(measured, (t) => t.accuracy);
    show("chart-accuracy", measured.length > 0);
    charts["chart-accuracy"].update();

    const q = model.overview.quarters;
    show("chart-quarters", q !== null);
    if (q) {
      const c = charts["chart-quarters"];
      c.data.labels = q.edges.slice(0, -1).map((e, i) => ((e + q.edges[i + 1]) / 2).toFixed(3));
      q.counts.forEach((row, i) => {
        c.data.datasets[i].data = row;
        c.data.datasets[i].label = `quarter ${i + 1} (mean ${q.means[i].toFixed(4)})`;
      });
      c.update();
    }

    const keys = [...new Set(model.steps.flatMap((s) => Object.keys(s.stats)))].sort();
    const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
    charts["chart-steps"].data.datasets = keys.map((k, i) => ({label: k,
      data: model.steps.filter((s) => typeof s.stats[k] === "number").map((s) => ({x: s.step, y: s.stats[k]})),
      borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
      pointRadius: model.steps.length > 60 ? 0 : 2, borderWidth: 1.5,
      hidden: !["baseline", "entropy", "loss"].includes(k) && keys.length > 3}));
    show("chart-steps", keys.length > 0);
    charts["chart-steps"].update();

    for (const cost of ["parameters", "macs"]) {
      const c = charts[`chart-pareto-${cost}`];
      const points = measured.filter((t) => t[cost] > 0);
      const front = new Set(model.overview.pareto[cost]);
      c.data.datasets[0].data = points.map((t) => ({x: t[cost], y: t.accuracy, id: t.id}));
      c.data.datasets[1].data = points.filter((t) => front.has(t.id))
        .sort((a, b) => a[cost] - b[cost]).map((t) => ({x: t[cost], y: t.accuracy, id: t.id}));
      show(`chart-pareto-${cost}`, points.length > 0);
      c.update();
    }

    const stale = model.overview.staleness;
    document.getElementById("staleness-figure").hidden = stale.length === 0;
    if (stale.length) {
      const c = charts["chart-staleness"];
      c.data.labels = stale.map((s) => String(s.staleness));
      c.data.datasets[0].data = stale.map((s) => s.updates);
      c.update();
    }
  }

  // --- the search summary ---------------------------------------------------------
  function drawSummary() {
    const o = model.overview, s = o.search;
    const badge = document.getElementById("state");
    const quiet = s.state === "stopped" ? ` (no write for ${duration(s.since_last_write)})` : "";
    badge.textContent = s.state + quiet;
    badge.className = `badge ${s.state}`;
    document.getElementById("progress-bar").style.width = `${Math.min(100, (100 * s.done) / Math.max(1, s.asked))}%`;
    document.getElementById("progress-text").textContent =
      `${count(s.done)} of ${count(s.asked)} trials: ${count(s.evaluated)} evaluated, ` +
      `${count(s.repeats)} repeats (not re-evaluated), ${count(s.failed)} failed` +
      (s.over_budget ? `, ${count(s.over_budget)} over budget (never trained)` : "");
    facts(document.getElementById("facts"), [
      ["elapsed", duration(s.elapsed)],
      ["estimated rest", s.state === "running" ? duration(s.eta) : "–"],
      ["trials per minute", s.trials_per_second ? (60 * s.trials_per_second).toFixed(1) : "–"],
      ["last write to the store", `${new Date(s.last_write * 1000).toLocaleString()} (${duration(s.since_last_write)} ago)`],
    ]);
    const best = document.getElementById("best");
    best.replaceChildren();
    if (s.best) {
      const link = el("a", `trial ${s.best.id}`);
      link.href = `/trial/${s.best.id}`;
      best.append("best: ", link, `, reward ${s.best.reward.toFixed(6)}: ${s.best.arch}`);
    } else {
      best.textContent = "best: none yet";
    }
    const config = Object.entries(o.config).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]);
    facts(document.getElementById("config"), config);
  }

  // --- the table ------------------------------------------------------------------
  function statusText(t) {
    if (t.repeat_of) return `${t.status} of ${t.repeat_of}`;
    return t.status === "over_budget" ? "over budget (never trained)" : t.status;
  }
  function ranks() {
    const ok = model.trials.filter((t) => t.status === "ok")
      .sort((a, b) => b.reward - a.reward || a.id - b.id);
    ok.forEach((t, i) => { t.rank = i + 1; });
  }
  function compare(key, dir) {
    return (a, b) => {
      const x = a[key], y = b[key];
      const missing = (v) => v === null || v === undefined;
      if (missing(x) || missing(y)) return missing(x) - missing(y) || a.id - b.id;
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return dir * order || a.id - b.id;
    };
  }
  function drawTable() {
    const text = model.filter.trim().toLowerCase();
    let rows = model.trials.filter((t) => (!model.status || t.status === model.status) &&
      (!text || String(t.id) === text || t.arch.toLowerCase().includes(text) ||
        (t.error || "").toLowerCase().includes(text)));
    rows.sort(compare(model.sort.key, model.sort.dir));
    const total = rows.length;
    rows = rows.slice(0, MAX_ROWS);
    const body = document.querySelector("#trials tbody");
    body.replaceChildren(...rows.map((t) => {
      const tr = el("tr", undefined, t.status);
      tr.dataset.id = t.id;
      const link = el("a", String(t.id));
      link.href = `/trial/${t.id}`;
      const idCell = el("td", undefined, "num");
      idCell.append(link);
      tr.append(el("td", t.rank ? String(t.rank) : "", "num"), idCell,
        el("td", fixed(t.reward, 6), "num"), el("td", fixed(t.accuracy, 4), "num"),
        el("td", count(t.parameters), "num"), el("td", count(t.macs), "num"),
        el("td", fixed(t.seconds, 1), "num"),
        el("td", statusText(t)),
        el("td", t.arch, "arch"));
      if (t.error) tr.title = t.error;
      return tr;
    }));
    document.getElementById("table-count").textContent = `(${count(model.trials.length)})`;
    document.getElementById("table-more").textContent = total > MAX_ROWS ?
      `showing ${MAX_ROWS} of ${count(total)} matching trials: filter or sort to see others` :
      `${count(total)} matching trials`;
    for (const th of document.querySelectorAll("#trials th")) {
      th.classList.toggle("sorted-asc", th.dataset.key === model.sort.key && model.sort.dir > 0);
      th.classList.toggle("sorted-desc", th.dataset.key === model.sort.key && model.sort.dir < 0);
    }
  }
  function bindTable() {
    for (const th of document.querySelectorAll("#trials th")) {
      th.addEventListener("click", () => {
        const key = th.dataset.key;
        model.sort = {key, dir: model.sort.key === key ? -model.sort.dir : (key === "rank" || key === "arch" || key === "status" ? 1 : -1)};
        drawTable();
      });
    }
    document.getElementById("filter").addEventListener("input", (e) => { model.filter = e.target.value; drawTable(); });
    document.getElementById("status-filter").addEventListener("change", (e) => { model.status = e.target.value; drawTable(); });
  }

  // --- polling --------------------------------------------------------------------
  async function poll() {
    const url = `/api/state?since=${model.trials.length}&steps=${model.steps.length}&server=${model.server}`;
    try {
      const response = await fetch(url, {cache: "no-store"});
      if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
      const data = await response.json();
      if (data.server !== model.server) { model.trials = []; model.steps = []; model.server = data.server; }
      model.trials.push(...data.trials);
      model.steps.push(...data.steps);
      model.overview = data.overview;
      drawSummary();
      if (data.version !== model.version || data.trials.length) {
        model.version = data.version;
        ranks();
        drawTable();
        drawCharts();
      }
      document.body.dataset.loaded = "true";
    } catch (err) {
      const badge = document.getElementById("state");
      badge.textContent = "dashboard unreachable";
      badge.className = "badge stopped";
    }
    const finished = model.overview && model.overview.search.state === "finished";
    window.setTimeout(poll, 1000 * settings.poll * (finished ? 5 : 1));
  }

  setUp();
  bindTable();
  poll();
})();
