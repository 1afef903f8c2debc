// Monitoring: every monitor, and one monitor's windows — each detector's
// statistic against its threshold over time, the drifted windows with
// their evidence, feedback volume, and estimated against realised accuracy.
import * as api from "../api.js";
import { h, table, section, link, badge, hash, time, dl, num } from "../dom.js";
import { lineChart } from "../chart.js";

export async function monitorsPage(ctx) {
  const ms = await api.get("/v1/monitors", { signal: ctx.signal });
  return {
    title: "Monitoring",
    node: h(
      "div",
      null,
      h("h1", null, "Monitoring"),
      table(
        "Monitors",
        [
          ["Monitor", (m) => link(`/monitors/${encodeURIComponent(m.spec.name)}`, m.spec.name)],
          ["Watches", (m) => `${m.model}@${m.alias}`],
          ["Windows", (m) => num(m.windows), "num"],
          ["Drifted", (m) => num(m.drifted), "num"],
          ["Last window", (m) => (m.last ? badge(m.last.drifted ? "drifted" : "stable") : "—")],
          ["Open window", (m) => `${num(m.open_count)} requests`],
          ["Feedback", (m) => `${num(m.feedback.total)} labels, ${num(m.feedback.pending)} pending`],
        ],
        ms,
        { rowHeader: true, empty: "No monitors: `tailor monitor apply FILE` watches a served alias (docs/monitoring.md)." },
      ),
    ),
  };
}

export async function monitorPage(ctx, name) {
  const sig = { signal: ctx.signal };
  const [m, windows] = await Promise.all([api.get(api.path`/v1/monitors/${name}`, sig), api.get(api.path`/v1/monitors/${name}/windows`, sig)]);
  const results = windows.map((w) => ({ w, r: w.result || {} }));
  const xs = windows.map((w) => w.index);
  const all = [...new Set(results.flatMap(({ r }) => (r.detectors || []).map((d) => d.name)))];
  // A detector that never ran (no embeddings, too few requests) gets a line
  // saying why instead of an empty chart.
  const ran = (name) => results.some(({ r }) => (r.detectors || []).some((d) => d.name === name && !d.skipped));
  const detectors = all.filter(ran);
  const skipped = all
    .filter((name) => !ran(name))
    .map((name) => {
      const d = results.map(({ r }) => (r.detectors || []).find((x) => x.name === name)).find((x) => x && x.skipped);
      return `${name}: ${d ? d.skipped : "did not run"}`;
    });
  const charts = detectors.map((name) => {
    const vals = results.map(({ r }) => {
      const d = (r.detectors || []).find((x) => x.name === name);
      if (!d || d.skipped) return [null, null];
      return d.pvalue !== undefined ? [d.adjusted_pvalue ?? d.pvalue, d.threshold] : [d.statistic, d.threshold];
    });
    const isTest = results.some(({ r }) => (r.detectors || []).some((d) => d.name === name && d.pvalue !== undefined));
    return lineChart({
      title: `${name}: ${isTest ? "adjusted p-value (drift below the level)" : "score (drift above the threshold)"}`,
      xLabel: "window",
      yLabel: isTest ? "p-value" : "score",
      series: [{ label: isTest ? "p-value" : "score" }, { label: isTest ? "level" : "threshold", color: "#82071e", dash: [6, 4] }],
      data: [xs, vals.map((v) => v[0]), vals.map((v) => v[1])],
      height: 200,
    }).node;
  });
  const perf = lineChart({
    title: "Accuracy: estimated without labels against realised from feedback",
    xLabel: "window",
    yLabel: "accuracy",
    series: [{ label: "estimated" }, { label: "realised", color: "#116329" }],
    data: [xs, results.map(({ r }) => (r.performance ? r.performance.expected_accuracy : null)), windows.map((w) => (w.realised_accuracy === undefined ? null : w.realised_accuracy))],
    height: 200,
  }).node;
  const drifted = results.filter(({ w }) => w.drifted);
  return {
    title: `Monitor ${name}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/monitors", "Monitoring"), " / ", name),
      h("h1", null, `Monitor ${name}`),
      dl([
        ["Watches", `${m.model}@${m.alias}`],
        ["Version watched", hash(m.version_id)],
        ["Reference profile", m.profile ? hash(m.profile) : "being built"],
        ["Profile run", m.profile_run ? link(`/runs/${encodeURIComponent(m.profile_run)}`, m.profile_run) : null],
        ["Windows", `${num(m.windows)} (${num(m.drifted)} drifted)`],
        ["Open window", `${num(m.open_count)} requests`],
        ["Feedback", `${num(m.feedback.total)} labels, ${num(m.feedback.pending)} not yet accumulated, ${num(m.feedback.no_text)} without text`],
        ["Spec", `v${m.spec.version} `],
      ]),
      section(
        "Drift statistics",
        windows.length ? h("div", { class: "charts" }, charts) : h("p", { class: "muted" }, "No window has closed yet."),
        skipped.length ? h("p", { class: "muted" }, "Not run: ", skipped.join("; "), ".") : null,
      ),
      section("Performance", windows.length ? perf : h("p", { class: "muted" }, "No window has closed yet.")),
      section(
        "Drift events",
        table(
          "Drifted windows with their evidence",
          [
            ["Window", (x) => String(x.w.index)],
            ["Time", (x) => time(x.w.time)],
            ["Requests", (x) => num(x.w.count), "num"],
            ["Detectors that drifted", (x) => evidence(x.r)],
          ],
          drifted.slice().reverse(),
          { rowHeader: true, empty: "No window has drifted." },
        ),
      ),
      section(
        "Windows",
        table(
          "Every window, newest first",
          [
            ["Window", (w) => String(w.index)],
            ["Time", (w) => time(w.time)],
            ["Requests", (w) => num(w.count), "num"],
            ["Drift", (w) => badge(w.drifted ? "drifted" : "stable")],
            ["Labelled", (w) => num(w.labelled), "num"],
            ["Realised accuracy", (w) => (w.realised_accuracy === undefined ? "—" : num(w.realised_accuracy)), "num"],
          ],
          windows.slice().reverse(),
          { rowHeader: true, empty: "No window has closed yet." },
        ),
      ),
    ),
  };
}

function evidence(r) {
  return h(
    "ul",
    { class: "plain" },
    (r.detectors || [])
      .filter((d) => d.drifted)
      .map((d) =>
        h(
          "li",
          null,
          `${d.name}: ${d.pvalue !== undefined ? `p ${num(d.adjusted_pvalue ?? d.pvalue)} < ${num(d.threshold)}` : `${num(d.statistic)} > ${num(d.threshold)}`}`,
          d.top && d.top.length ? ` (top: ${d.top.slice(0, 3).map((t) => t.example || `bucket ${t.bucket}`).join(", ")})` : "",
        ),
      ),
  );
}
