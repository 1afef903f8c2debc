// Usage: what runs and served requests used in the project the reader
// acts in (GET /v1/usage), grouped by project, by model and by UTC day —
// a table per grouping with its total, and the energy and cost by day as
// a chart. Every energy figure carries the API's label: measured (RAPL)
// or estimated (CPU time × watts per core), docs/metering.md.
import * as api from "../api.js";
import { h, fill, table, section, num, errorBox } from "../dom.js";
import { lineChart } from "../chart.js";

const GROUPS = [
  ["project", "By project", "Project"],
  ["model", "By model", "Model"],
  ["day", "By day (UTC)", "Day"],
];

// energy is an energy figure with its label, measured or estimated.
export function energy(kwh, source) {
  return h("span", { class: "energy" }, `${num(kwh)} kWh `, h("span", { class: ["badge", source === "measured" ? "badge-good" : "badge-plain"] }, source || "estimated"));
}

// bytes is a size in MiB (or bytes when small).
export function bytes(n) {
  if (!n) return "0";
  return n < 1 << 20 ? `${num(n)} B` : `${num(n / (1 << 20), 3)} MiB`;
}

// flops is a FLOP count, in powers of ten past 100 000.
export function flops(x) {
  return x >= 1e5 ? x.toExponential(2) : num(x || 0);
}

// seconds is a duration in seconds.
export function seconds(s) {
  return `${num(s || 0)} s`;
}

export async function usagePage(ctx) {
  const sig = { signal: ctx.signal };
  const from = h("input", { id: "usage-from", name: "from", type: "date" });
  const to = h("input", { id: "usage-to", name: "to", type: "date" });
  const box = h("div", null);
  const load = async () => {
    const query = { from: from.value, to: to.value };
    const reports = await Promise.all(GROUPS.map(([by]) => api.get("/v1/usage", { ...sig, query: { by, ...query } })));
    const byDay = reports[2];
    fill(box, dayChart(byDay), GROUPS.map(([, title, key], i) => section(title, usageTable(title, key, reports[i]))));
  };
  const form = h(
    "form",
    { class: "filters usage-range", "aria-label": "Days" },
    h("label", { for: "usage-from" }, "From "),
    from,
    h("label", { for: "usage-to" }, " to "),
    to,
    " ",
    h("button", { type: "submit", class: "secondary" }, "Show"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load().catch((err) => fill(box, errorBox(err, "read usage")));
  });
  await load();
  return {
    title: "Usage",
    node: h(
      "div",
      null,
      h("h1", null, "Usage"),
      h(
        "p",
        null,
        "Runs (CPU and wall time, FLOPs; a run's peak memory is on its page) and served requests (tokens, latency), with their energy and cost, in the project you act in. Days are UTC; both ends are included. Energy is measured where the server reads RAPL counters and estimated from CPU time otherwise (docs/metering.md).",
      ),
      form,
      box,
    ),
  };
}

// dayChart draws energy and cost by day, as bars.
function dayChart(rep) {
  const rows = rep.rows || [];
  const xs = rows.map((r) => Date.parse(r.key + "T00:00:00Z") / 1000);
  const sources = [...new Set(rows.map((r) => r.energy_source || "estimated"))];
  const chart = lineChart({
    title: `Energy by day (kWh, ${sources.join(" and ") || "no usage"})`,
    xLabel: "day (UTC)",
    yLabel: "kWh",
    series: [{ label: "energy (kWh)", color: "#116329" }],
    data: [xs, rows.map((r) => r.energy_kwh)],
    days: true,
    bars: true,
    summary: () =>
      rows.length
        ? rows.map((r) => `${r.key}: ${num(r.energy_kwh)} kWh ${r.energy_source || "estimated"}, ${num(r.cost_usd)} USD`).join("; ")
        : "No usage in these days.",
  });
  return chart.node;
}

function usageTable(title, key, rep) {
  const rows = rep.rows || [];
  const cols = [
    [key, (r) => r.key],
    ["Runs", (r) => num(r.runs), "num"],
    ["CPU / wall time", (r) => `${num(r.cpu_seconds, 3)} / ${num(r.wall_seconds, 3)} s`, "num"],
    ["FLOPs", (r) => flops(r.flops), "num"],
    ["Requests", (r) => num(r.requests), "num"],
    ["Tokens in / out", (r) => `${num(r.tokens_in)} / ${num(r.tokens_out)}`, "num"],
    ["Latency mean / max", (r) => (r.requests ? `${num(r.latency_ms_avg, 3)} / ${num(r.latency_ms_max, 3)} ms` : "—"), "num"],
    ["Energy", (r) => energy(r.energy_kwh, r.energy_source), "num"],
    ["Cost", (r) => `${num(r.cost_usd)} USD`, "num"],
  ];
  const all = rows.length ? [...rows, { ...rep.total, key: "total", total: true }] : [];
  const caption = `Usage ${title[0].toLowerCase()}${title.slice(1)}${rep.from || rep.to ? `, ${rep.from || "…"} to ${rep.to || "…"}` : ""}`;
  // A wide table scrolls sideways on a narrow screen: keyboard users reach
  // the scroll region by Tab.
  const t = table(caption, cols, all, {
    rowHeader: true,
    class: "usage",
    region: true,
    empty: "No usage metered in these days.",
  });
  const last = t.querySelector("tbody tr:last-child");
  if (rows.length && last) last.classList.add("total");
  return t;
}
