// Runs: the list, and one run with its live loss and tokens/s curves (from
// its log, followed while it runs), its log, its inputs, what it used
// against its budget, cancel (operators) and resume with a raised budget
// (admins, a run stopped in budget_exceeded).
import * as api from "../api.js";
import { h, fill, table, section, link, badge, hash, time, dl, num, okBox, errorBox, runKind, isTerminal, modelRef } from "../dom.js";
import { lineChart } from "../chart.js";
import { field, actionForm } from "../forms.js";
import { may, withoutRole } from "../session.js";
import { energy, bytes, seconds, flops } from "./usage.js";

const STATES = ["", "queued", "running", "succeeded", "failed", "canceled", "budget_exceeded"];

export async function runsPage(ctx) {
  const box = h("div", null);
  const select = h("select", { id: "run-state", name: "state" }, STATES.map((s) => h("option", { value: s }, s || "all")));
  const load = async () => {
    const runs = await api.get("/v1/runs", { signal: ctx.signal, query: { state: select.value } });
    fill(box, runsTable(runs));
  };
  select.addEventListener("change", () => load().catch((err) => fill(box, errorBox(err, "list runs"))));
  await load();
  let pending = null;
  ctx.onEvent((ev) => {
    if (ev.type !== "run.state.changed" || pending) return;
    pending = setTimeout(() => {
      pending = null;
      load().catch(() => {});
    }, 300);
  });
  return {
    title: "Runs",
    node: h(
      "div",
      null,
      h("h1", null, "Runs"),
      h("div", { class: "filters" }, h("label", { for: "run-state" }, "State "), select),
      box,
    ),
  };
}

function runsTable(runs) {
  return table(
    "Runs, newest first",
    [
      ["Run", (r) => link(`/runs/${encodeURIComponent(r.id)}`, r.id)],
      ["Kind", (r) => runKind(r)],
      ["Recipe", (r) => recipeName(r)],
      ["State", (r) => badge(r.state)],
      ["Step", (r) => (r.total_steps ? `${r.step} / ${r.total_steps}` : "—"), "num"],
      ["Created", (r) => time(r.created_at)],
      ["Finished", (r) => time(r.finished_at)],
    ],
    runs.slice().sort((a, b) => (a.created_at < b.created_at ? 1 : -1)),
    { rowHeader: true, empty: "No runs match." },
  );
}

function recipeName(r) {
  const rc = r.inputs && r.inputs.recipe;
  return rc ? `${rc.name}@v${rc.version}` : "—";
}

export async function runPage(ctx, id) {
  const sig = { signal: ctx.signal };
  let [r, models, usage] = await Promise.all([
    api.get(api.path`/v1/runs/${id}`, sig),
    api.get("/v1/registry/models", sig),
    api.get(api.path`/v1/runs/${id}/usage`, sig),
  ]);
  const made = models.filter((m) => m.run_id === id);
  const xs = [];
  const loss = [];
  const tps = [];
  const logLines = [];
  const smooth = [];
  const lossChart = lineChart({
    title: "Training loss by step",
    xLabel: "step",
    yLabel: "loss",
    series: [{ label: "loss", color: "#8c959f", width: 1 }, { label: "smoothed (EMA 0.9)", color: "#0550ae" }],
    data: [[], [], []],
  });
  const tpsChart = lineChart({ title: "Throughput by step", xLabel: "step", yLabel: "tokens/s", series: [{ label: "tokens/s", color: "#bc4c00" }], data: [[], []] });
  const logList = h("ul", { class: "log" });
  const stateBox = h("span", null, badge(r.state));
  const factsBox = h("div", null, runFacts(r, made));
  const metricsBox = h("div", null, metricsTable(r));
  const latest = h("p", { class: "latest", "aria-live": "polite" });
  let after = 0;

  const take = (line) => {
    after = line.seq;
    const d = line.data || {};
    if (typeof d.loss === "number" && d.step) {
      xs.push(d.step);
      loss.push(d.loss);
      smooth.push(smooth.length ? 0.9 * smooth[smooth.length - 1] + 0.1 * d.loss : d.loss);
      tps.push(typeof d.tokens_per_s === "number" ? d.tokens_per_s : null);
    }
    logLines.push(line);
    if (d.state) fill(stateBox, badge(d.state));
  };
  const draw = () => {
    lossChart.set([xs.slice(), loss.slice(), smooth.slice()]);
    tpsChart.set([xs.slice(), tps.slice()]);
    fill(logList, logLines.slice(-200).map(logItem));
    const i = xs.length - 1;
    latest.textContent = i >= 0 ? `Step ${xs[i]}: loss ${num(loss[i])}, ${tps[i] === null ? "—" : num(tps[i], 3)} tokens/s.` : "No progress yet.";
  };
  // A finished run's log is read whole before the page shows; a live one
  // is followed until the run ends, and the page updated per line.
  for await (const line of api.lines(api.path`/v1/runs/${id}/logs`, sig)) take(line);
  draw();
  const cancelResult = h("div", { "aria-live": "polite" });
  const cancelButton = h("button", { type: "button", class: "danger" }, "Cancel run");
  cancelButton.addEventListener("click", async () => {
    cancelButton.disabled = true;
    try {
      const c = await api.post(api.path`/v1/runs/${id}/cancel`);
      fill(cancelResult, okBox(h("p", { class: "alert-title" }, "Cancel requested"), h("p", null, `Run ${c.id} is ${c.state}.`)));
      fill(stateBox, badge(c.state));
    } catch (err) {
      fill(cancelResult, errorBox(err, `cancel ${id}`));
    } finally {
      cancelButton.disabled = false;
    }
  });
  const cancelBox = h(
    "div",
    { class: "cancel", hidden: isTerminal(r.state) },
    may("operator") ? [h("p", null, "Stops the run; its last checkpoint is kept."), cancelButton] : withoutRole("cancel a run", "operator"),
  );

  const usageBox = h("div", null);
  // The resume's answer stays while the usage above it is redrawn.
  const resumeResult = h("div", { class: "form-result", "aria-live": "polite" });
  const refreshRun = async () => {
    [r, usage] = await Promise.all([api.get(api.path`/v1/runs/${id}`, sig), api.get(api.path`/v1/runs/${id}/usage`, sig)]);
    fill(stateBox, badge(r.state));
    fill(factsBox, runFacts(r, made));
    fill(metricsBox, metricsTable(r));
    showUsage();
    cancelBox.hidden = isTerminal(r.state);
  };
  const showUsage = () => fill(usageBox, usageFacts(usage), r.state === "budget_exceeded" ? (may("admin") ? resumeForm(r, usage, refreshRun, resumeResult) : withoutRole("resume a run with a raised budget", "admin")) : null);
  showUsage();
  if (!isTerminal(r.state)) {
    (async () => {
      try {
        // Lines come in bursts (a checkpoint every few steps): the page
        // redraws at most four times a second.
        let timer = null;
        for await (const line of api.lines(api.path`/v1/runs/${id}/logs`, { ...sig, query: { follow: true, after } })) {
          take(line);
          timer = timer || setTimeout(() => {
            timer = null;
            draw();
          }, 250);
        }
        clearTimeout(timer);
        draw();
        await refreshRun();
      } catch (err) {
        if (!ctx.signal.aborted) fill(latest, errorBox(err, "follow the run's log"));
      }
    })();
  }

  return {
    title: `Run ${id}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/runs", "Runs"), " / ", id),
      h("h1", null, `Run ${id} `, stateBox),
      h("p", { class: "links" }, link(`/lineage/${encodeURIComponent(id)}`, "Lineage graph"), made.map((m) => link(`/models/${encodeURIComponent(m.name)}/v${m.version}`, `Model ${modelRef(m)}`))),
      h("div", null, cancelBox, cancelResult),
      section("Progress", latest, h("div", { class: "charts" }, lossChart.node, tpsChart.node)),
      section("Inputs", factsBox),
      section("Result metrics", metricsBox),
      section("Usage and budget", usageBox, resumeResult),
      section("Log", h("div", { class: "log-box", tabindex: "0", role: "region", "aria-label": "Run log" }, logList)),
    ),
  };
}

function runFacts(r, made) {
  const inp = r.inputs || {};
  const ref = (x, route) => (x && x.id ? link(route(x), `${x.name}${x.version ? "@v" + x.version : ""} `, hash(x.id)) : null);
  return dl([
    ["Kind", runKind(r)],
    ["Run key", hash(r.key)],
    ["Recipe", ref(inp.recipe, (x) => `/recipes/${encodeURIComponent(x.name)}/${encodeURIComponent(x.id)}`)],
    ["Dataset", ref(inp.dataset, (x) => `/datasets/${encodeURIComponent(x.name)}/${encodeURIComponent(x.id)}`)],
    ["Split", inp.split],
    ["Base", ref(inp.base, (x) => `/bases/${encodeURIComponent(x.name)}/${encodeURIComponent(x.id)}`)],
    ["Model evaluated", inp.model && inp.model.id ? `${inp.model.name || ""}` : null],
    ["Engine", r.engine_version],
    ["Attempt", String(r.attempt)],
    ["Step", r.total_steps ? `${r.step} / ${r.total_steps}` : null],
    ["Last checkpoint", r.checkpoint ? hash(r.checkpoint) : null],
    ["Result", r.result ? hash(r.result) : null],
    ["Registered as", made.length ? made.map((m) => link(`/models/${encodeURIComponent(m.name)}/v${m.version}`, modelRef(m))) : null],
    ["Error", r.error ? h("span", { class: "bad-text" }, r.error) : null],
    ["Created", time(r.created_at)],
    ["Started", time(r.started_at)],
    ["Finished", time(r.finished_at)],
  ]);
}

function metricsTable(r) {
  const m = r.metrics || {};
  const rows = Object.entries(m).filter(([, v]) => v !== null && typeof v !== "object");
  if (!rows.length) return h("p", { class: "muted" }, "None until the run succeeds.");
  return table(
    "Metrics the run reported",
    [
      ["Metric", (x) => x[0]],
      ["Value", (x) => (typeof x[1] === "number" ? num(x[1]) : String(x[1])), "num"],
    ],
    rows,
    { rowHeader: true },
  );
}

function logItem(line) {
  const d = line.data || {};
  let text = d.message || "";
  if (typeof d.loss === "number") text = `step ${d.step}/${d.total_steps}: loss ${num(d.loss)}, lr ${num(d.lr)}, ${num(d.tokens_per_s, 3)} tokens/s`;
  if (!text) text = JSON.stringify(d);
  return h("li", null, h("span", { class: "muted" }, `#${line.seq} `), time(line.time), " ", text);
}

// usageFacts is what a run used over all its attempts (GET
// /v1/runs/{id}/usage), its budget in force and the limit it stopped at.
function usageFacts(u) {
  const b = u.budget || {};
  const limits = [
    b.max_steps ? `max_steps ${b.max_steps}` : null,
    b.max_duration ? `max_duration ${b.max_duration}` : null,
    b.max_cost_usd ? `max_cost_usd ${b.max_cost_usd}` : null,
    b.max_energy_kwh ? `max_energy_kwh ${b.max_energy_kwh}` : null,
  ].filter(Boolean);
  const ex = u.exceeded;
  return dl([
    ["CPU time", seconds(u.cpu_seconds)],
    ["Wall time", seconds(u.wall_seconds)],
    ["FLOPs", flops(u.flops)],
    ["Peak RSS", bytes(u.peak_rss_bytes)],
    ["Energy", energy(u.energy_kwh, u.energy_source)],
    ["Cost", `${num(u.cost_usd)} USD`],
    ["Budget in force", limits.length ? limits.join(", ") : "none"],
    ["Stopped at", ex ? h("span", { class: "bad-text" }, `budget ${ex.limit} ${ex.value} reached: measured ${ex.measured}${ex.source ? ` (${ex.source})` : ""}`) : null],
  ]);
}

// resumeForm raises a stopped run's budget and queues it to resume from
// its last checkpoint (POST /v1/runs/{id}/resume); only the limits filled
// in are raised.
function resumeForm(r, u, refresh, resultBox) {
  const b = u.budget || {};
  const steps = field("Max steps", { name: "max_steps", type: "number", min: 1, step: 1, value: b.max_steps || "", inputmode: "numeric" });
  const duration = field("Max duration", { name: "max_duration", value: b.max_duration || "", placeholder: "10m", autocomplete: "off" }, { help: "A Go duration: 90s, 10m, 2h." });
  const cost = field("Max cost (USD)", { name: "max_cost_usd", type: "number", min: 0, step: "any", value: b.max_cost_usd || "" });
  const kwh = field("Max energy (kWh)", { name: "max_energy_kwh", type: "number", min: 0, step: "any", value: b.max_energy_kwh || "" });
  return actionForm({
    title: `Resume ${r.id} with a raised budget`,
    fields: [steps, duration, cost, kwh],
    submit: "Resume",
    what: () => `resume ${r.id}`,
    act: () => {
      const body = {};
      if (steps.input.value) body.max_steps = Number(steps.input.value);
      if (duration.input.value.trim()) body.max_duration = duration.input.value.trim();
      if (cost.input.value) body.max_cost_usd = Number(cost.input.value);
      if (kwh.input.value) body.max_energy_kwh = Number(kwh.input.value);
      return api.post(api.path`/v1/runs/${r.id}/resume`, body);
    },
    ok: (run) => okBox(h("p", { class: "alert-title" }, "Resumed"), h("p", null, `Run ${run.id} is ${run.state}: it resumes from its last checkpoint.`)),
    after: () => refresh().catch(() => {}),
    resultBox,
  });
}
