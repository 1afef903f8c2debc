// An eval report: its inputs, the gate verdict with every gate's reason,
// metrics per slice, per class and the confusion matrix of each slice,
// baselines, latency, cost and the forgetting comparison.
import * as api from "../api.js";
import { h, table, section, link, badge, hash, dl, num, short, modelRef } from "../dom.js";

export async function reportPage(ctx, digest) {
  const [body, models] = await Promise.all([api.get(api.path`/v1/reports/${digest}`, { signal: ctx.signal }), api.get("/v1/registry/models", { signal: ctx.signal })]);
  const r = body.report;
  const owner = models.find((m) => (m.reports || []).some((x) => x.digest === body.digest));
  const inp = r.inputs || {};
  const slices = r.slices || [];
  return {
    title: `Eval report ${short(digest)}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/", "Overview"), " / ", owner ? [link(`/models/${encodeURIComponent(owner.name)}/v${owner.version}`, modelRef(owner)), " / "] : null, "eval report"),
      h("h1", null, `Eval report ${short(digest)} `, r.verdict ? badge(r.verdict.pass ? "pass" : "fail") : null),
      dl([
        ["Model version", owner ? link(`/models/${encodeURIComponent(owner.name)}/v${owner.version}`, modelRef(owner)) : null],
        ["Digest", hash(body.digest)],
        ["Task", r.task],
        ["Model (run key)", hash(inp.model_id)],
        ["Dataset version", hash(inp.dataset_id)],
        ["Split", inp.split],
        ["Compared with champion", inp.champion_id ? hash(inp.champion_id) : null],
        ...Object.entries(inp.hashes || {}).map(([k, v]) => [`Hash: ${k}`, hash(v)]),
      ]),
      section("Gate verdicts", r.verdict ? gatesTable(r.verdict) : h("p", { class: "muted" }, "No gates were given.")),
      section("Metrics per slice", slicesTable(slices)),
      slices.filter((s) => s.classify).map((s) => classSection(s)),
      slices.filter((s) => s.generate).map((s) => section(`Generation metrics: ${s.slice}`, kvTable(`Generation metrics, slice ${s.slice}`, s.generate))),
      r.baselines && r.baselines.length ? section("Baselines", baselinesTable(r, slices)) : null,
      r.latency ? section("Latency (ms)", kvTable("Latency per prediction, milliseconds", r.latency)) : null,
      r.cost ? section("Cost per 1000 predictions", costTable(r.cost)) : null,
      r.forgetting ? section("Forgetting", kvTable("The candidate against the model it started from, on that model's test split", r.forgetting)) : null,
    ),
  };
}

// gatesTable lists a verdict's gates: what each checked, what was
// observed, and the reason in words.
export function gatesTable(v) {
  return h(
    "div",
    null,
    h("p", { class: "verdict" }, "Verdict: ", badge(v.pass ? "pass" : "fail"), v.pass ? " every gate passed." : " at least one gate failed; promotion is refused without an override."),
    table(
      "Gates",
      [
        ["Gate", (g) => gateName(g.gate)],
        ["Observed", (g) => num(g.observed), "num"],
        ["Threshold", (g) => num(g.threshold), "num"],
        ["Result", (g) => badge(g.pass ? "pass" : "fail")],
        ["Reason", (g) => g.reason],
      ],
      v.gates || [],
      { rowHeader: true, class: "gates" },
    ),
  );
}

function gateName(g) {
  const slice = g.slice && g.slice !== "all" ? ` (slice ${g.slice})` : "";
  switch (g.kind) {
    case "threshold":
      return `${g.metric} ${g.op} ${num(g.value)}${slice}`;
    case "not_worse":
      return `${g.metric} not worse than champion − ${num(g.epsilon || 0)}${slice}`;
    case "latency":
    case "cost":
      return `${g.kind} ${g.metric} ≤ ${num(g.value)}`;
    default:
      return `${g.kind} ${g.metric}${slice}`;
  }
}

const CLASSIFY_METRICS = [
  ["accuracy", "Accuracy"],
  ["macro_f1", "Macro F1"],
  ["ece", "ECE"],
  ["log_loss", "Log loss"],
];

// sliceMetrics is one slice's headline metrics, with the report's latency
// and cost when it has them.
export function sliceMetrics(s, r) {
  const rows = [["Examples", num(s.n)]];
  if (s.classify) for (const [k, label] of CLASSIFY_METRICS) if (s.classify[k] !== undefined) rows.push([label, num(s.classify[k])]);
  if (s.generate) for (const [k, v] of Object.entries(s.generate)) if (typeof v === "number") rows.push([k, num(v)]);
  if (r && r.latency) rows.push(["Latency p95 (ms)", num(r.latency.p95_ms)]);
  if (r && r.cost) rows.push([`Cost per 1000 (${(r.cost.model && r.cost.model.currency) || ""})`, num(r.cost.cost_per_1k)]);
  return table(`Metrics, slice ${s.slice}`, [["Metric", (x) => x[0]], ["Value", (x) => x[1], "num"]], rows, { rowHeader: true, class: "metrics" });
}

function slicesTable(slices) {
  const gen = slices.some((s) => s.generate);
  const cols = [["Slice", (s) => s.slice], ["n", (s) => num(s.n), "num"]];
  if (!gen) for (const [k, label] of CLASSIFY_METRICS) cols.push([label, (s) => (s.classify ? num(s.classify[k]) : "—"), "num"]);
  else {
    const keys = [...new Set(slices.flatMap((s) => Object.keys(s.generate || {}).filter((k) => typeof s.generate[k] === "number")))];
    for (const k of keys) cols.push([k, (s) => (s.generate ? num(s.generate[k]) : "—"), "num"]);
  }
  return table("Metrics per slice", cols, slices, { rowHeader: true });
}

function classSection(s) {
  const c = s.classify;
  return section(
    `Slice ${s.slice}: classes and confusion matrix`,
    table(
      `Per class, slice ${s.slice}`,
      [
        ["Label", (x) => x.label],
        ["Precision", (x) => num(x.precision), "num"],
        ["Recall", (x) => num(x.recall), "num"],
        ["F1", (x) => num(x.f1), "num"],
        ["Support", (x) => num(x.support), "num"],
        ["Predicted", (x) => num(x.predicted), "num"],
      ],
      c.classes || [],
      { rowHeader: true },
    ),
    confusion(s.slice, c),
  );
}

// confusion is the confusion matrix as a table (rows gold, columns
// predicted); a cell's shade repeats its share of its row.
function confusion(slice, c) {
  const labels = c.labels || [];
  const m = c.confusion || [];
  const rows = labels.map((gold, i) => {
    const total = (m[i] || []).reduce((a, b) => a + b, 0) || 1;
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, gold),
      labels.map((pred, j) => {
        const n = (m[i] || [])[j] || 0;
        const share = n / total;
        const level = share === 0 ? 0 : Math.min(4, 1 + Math.floor(share * 4));
        return h("td", { class: ["num", "cm", `cm-${level}`, i === j && "cm-diag"], title: `gold ${gold}, predicted ${pred}: ${n}` }, String(n));
      }),
    );
  });
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "confusion" },
      h("caption", null, `Confusion matrix, slice ${slice}: rows are the gold labels, columns the predicted ones`),
      h("thead", null, h("tr", null, h("td", null, "gold \\ predicted"), labels.map((l) => h("th", { scope: "col" }, l)))),
      h("tbody", null, rows),
    ),
  );
}

function baselinesTable(r, slices) {
  const all = slices.find((s) => s.slice === "all");
  const rows = (r.baselines || []).map((b) => ({ name: b.name, m: b.metrics }));
  if (all && all.classify) rows.unshift({ name: "this model", m: all.classify });
  return table(
    "This model against the baselines, all records",
    [
      ["Model", (x) => x.name],
      ["Accuracy", (x) => num(x.m.accuracy), "num"],
      ["Macro F1", (x) => num(x.m.macro_f1), "num"],
      ["ECE", (x) => num(x.m.ece), "num"],
      ["Log loss", (x) => num(x.m.log_loss), "num"],
    ],
    rows,
    { rowHeader: true },
  );
}

function costTable(c) {
  return table(
    `Cost per 1000 predictions (${num(c.model.watts_per_core)} W per core, ${num(c.model.price_per_kwh)} ${c.model.currency} per kWh)`,
    [
      ["CPU seconds", (x) => num(x.cpu_seconds_per_1k), "num"],
      ["Energy (Wh)", (x) => num(x.energy_wh_per_1k), "num"],
      [`Cost (${c.model.currency})`, (x) => num(x.cost_per_1k), "num"],
    ],
    [c],
  );
}

function kvTable(caption, obj) {
  const rows = Object.entries(obj).filter(([, v]) => v === null || typeof v !== "object");
  return table(caption, [["Field", (x) => x[0]], ["Value", (x) => (typeof x[1] === "number" ? num(x[1]) : String(x[1])), "num"]], rows, { rowHeader: true });
}
