// Line charts over uPlot (vendored, static/vendor/uplot). Every chart is a
// <figure> with a caption, a text summary for screen readers, and its data
// as a table one click away, so nothing is only in the picture.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h, num } from "./dom.js";

const COLORS = ["#0550ae", "#bc4c00", "#116329", "#8250df", "#82071e"];

// lineChart draws series over a shared x. series: [{label, color?, dash?}];
// data: [xs, ys1, ys2, …] (null for a gap). It returns {node, set(data)};
// set redraws with new data (a live run appends points). With days, x is
// a UTC day in Unix seconds (shown as YYYY-MM-DD); with bars, each series
// is drawn as bars instead of a line.
export function lineChart({ title, xLabel, yLabel, series, data, height = 240, summary, days = false, bars = false }) {
  const xText = days ? (x) => new Date(x * 1000).toISOString().slice(0, 10) : (x) => num(x);
  const plot = h("div", { class: "plot", role: "img", "aria-label": title });
  const tableBox = h("div", { class: "table-wrap" });
  const details = h("details", null, h("summary", null, "Data as a table"), tableBox);
  const node = h("figure", { class: "chart", "data-points": "0" }, h("figcaption", null, title), plot, details);
  // The table is built when it is opened, and kept current while open.
  details.addEventListener("toggle", () => details.open && drawTable());
  let u = null;
  let current = data;
  const opts = (width) => ({
    width,
    height,
    scales: { x: days ? { time: false, range: (u, min, max) => [min - 43200, max + 43200] } : { time: false } },
    axes: [
      // x is a count (steps, windows): ticks on whole numbers only; or a
      // day: a tick per day at most.
      days
        ? { label: xLabel, stroke: "#1f2328", grid: { stroke: "#d0d7de" }, ticks: { stroke: "#d0d7de" }, incrs: [86400, 2 * 86400, 7 * 86400, 30 * 86400], values: (u, xs) => xs.map(xText) }
        : { label: xLabel, stroke: "#1f2328", grid: { stroke: "#d0d7de" }, ticks: { stroke: "#d0d7de" }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] },
      { label: yLabel, stroke: "#1f2328", grid: { stroke: "#d0d7de" }, ticks: { stroke: "#d0d7de" }, size: 64, values: (u, ys) => ys.map((y) => num(y)) },
    ],
    series: [
      days ? { label: xLabel, value: (u, x) => (x === null || x === undefined ? "—" : xText(x)) } : { label: xLabel },
      ...series.map((s, i) => {
        const color = s.color || COLORS[i % COLORS.length];
        return bars
          ? { label: s.label, stroke: color, fill: color, width: 1, paths: uPlot.paths.bars({ size: [0.6, 48] }), points: { show: false } }
          : { label: s.label, stroke: color, width: s.width || 2, dash: s.dash, spanGaps: true };
      }),
    ],
    legend: { show: true },
  });
  const ro = new ResizeObserver((entries) => {
    const width = Math.floor(entries[0].contentRect.width);
    if (!width) return;
    if (!u) u = new uPlot(opts(width), current, plot);
    else u.setSize({ width, height });
  });
  ro.observe(plot);

  function set(d) {
    current = d;
    const n = d[0].length;
    node.dataset.points = String(n);
    plot.setAttribute("aria-label", `${title}. ${summary ? summary(d) : describe(d)}`);
    if (u) u.setData(d);
    if (details.open) drawTable();
  }
  function drawTable() {
    const d = current;
    tableBox.replaceChildren(
      h(
        "table",
        null,
        h("caption", null, title),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, xLabel), series.map((s) => h("th", { scope: "col" }, s.label)))),
        h(
          "tbody",
          null,
          d[0].map((x, i) => h("tr", null, h("th", { scope: "row" }, xText(x)), series.map((_, j) => h("td", { class: "num" }, d[j + 1][i] === null ? "—" : num(d[j + 1][i]))))),
        ),
      ),
    );
  }
  function describe(d) {
    const n = d[0].length;
    if (!n) return "No points yet.";
    return series
      .map((s, j) => {
        const ys = d[j + 1].filter((y) => y !== null);
        return ys.length ? `${s.label}: ${ys.length} points, first ${num(ys[0])}, last ${num(ys[ys.length - 1])}` : `${s.label}: no points`;
      })
      .join("; ");
  }
  set(data);
  return { node, set };
}
