// Draws the charts of andon's pages with uPlot: each element with data-chart reads its
// series from the JSON script named by data-source (the server writes it; no fetch).
(function () {
  "use strict";
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();

  const whole = [1, 2, 5, 10, 20, 50, 100, 200, 500];  // x ticks of counted things

  function size(el) {
    return { width: Math.max(el.clientWidth, 320), height: 220 };
  }

  function rows(el, data) {
    if (data.runs.length === 0) {
      el.textContent = "no build recorded yet";
      return null;
    }
    const x = data.runs.map((_, i) => i + 1);
    return new uPlot({
      ...size(el),
      scales: { x: { time: false } },
      axes: [{ label: "build", incrs: whole }, { label: "rows", size: 70 }],
      series: [
        { label: "build", value: (u, v, i) => (v == null ? "" : "run " + data.runs[i]) },
        { label: "rows", stroke: color("--accent"), width: 2, points: { show: true } },
      ],
    }, [x, data.rows], el);
  }

  function spc(el, data) {
    if (data.x.length === 0) {
      el.textContent = "no results yet";
      return null;
    }
    const dashed = [6, 4];
    return new uPlot({
      ...size(el),
      scales: { x: { time: false } },
      axes: [{ label: "result", incrs: whole }, { label: "metric", size: 70 }],
      series: [
        { label: "result" },
        { label: "metric", stroke: color("--accent"), width: 2, points: { show: true } },
        { label: "mean", stroke: color("--muted"), dash: dashed },
        { label: "lower limit", stroke: color("--warn"), dash: dashed },
        { label: "upper limit", stroke: color("--warn"), dash: dashed },
        { label: "incident", stroke: color("--bad"), width: 0,
          points: { show: true, size: 10, fill: color("--bad") } },
      ],
    }, [data.x, data.metric, data.mean, data.lower, data.upper, data.incident], el);
  }

  function daily(el, data) {
    if (data.x.length === 0) {
      el.textContent = "nothing in the window";
      return null;
    }
    const colors = [color("--accent"), color("--bad"), color("--warn")];
    return new uPlot({
      ...size(el),
      scales: { x: { range: () => [data.from, data.to] } },
      axes: [{}, { size: 50 }],
      series: [{ label: "day" }].concat(data.series.map((s, i) => ({
        label: s.label, stroke: colors[i % colors.length], width: 2, points: { show: true },
      }))),
    }, [data.x].concat(data.series.map((s) => s.values)), el);
  }

  const kinds = { rows: rows, spc: spc, daily: daily };

  function draw(root) {
    root.querySelectorAll("[data-chart]").forEach((el) => {
      if (el.dataset.drawn) return;
      const source = document.getElementById(el.dataset.source);
      el.dataset.drawn = "1";
      kinds[el.dataset.chart](el, JSON.parse(source.textContent));
    });
  }

  document.addEventListener("DOMContentLoaded", () => draw(document));
  document.addEventListener("htmx:afterSettle", (e) => draw(e.target));
})();
