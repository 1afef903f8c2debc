// Drives Debian's chromium through the dashboard of a real tailor server
// (e2e/dashboard_test.go builds the state and starts the server):
//
//   overview → champion → its lineage graph → the dataset version → back to
//   the run's loss curve → the eval report → the candidate whose gate fails:
//   promotion refused, promoted with an override and a reason, rolled back
//   with a reason, promoted to an alias that needs approval: its requester's
//   approval refused, another person's taken → a live run followed and
//   cancelled → datasets, monitoring and a monitor's drift, triggers and the
//   deployment.
//
// On every page it saves a full-page screenshot and runs axe-core; at the
// end it fails on any serious or critical axe violation, any console error
// or page error, any failed request and any HTTP error other than the two
// refusals the script provokes. It prints a JSON summary on stdout.
//
// usage: node check.js PREFIX BASE_URL STATE_JSON OUT_DIR CHROMIUM
//   PREFIX: where `npm ci` installed this folder's package-lock.json.
"use strict";

const fs = require("fs");
const path = require("path");

const [prefix, base, stateFile, outDir, chromiumPath] = process.argv.slice(2);
if (!chromiumPath) {
  console.error("usage: node check.js PREFIX BASE_URL STATE_JSON OUT_DIR CHROMIUM");
  process.exit(2);
}
const { chromium } = require(path.join(prefix, "node_modules", "playwright-core"));
const axeSource = fs.readFileSync(path.join(prefix, "node_modules", "axe-core", "axe.min.js"), "utf8");
const axeVersion = require(path.join(prefix, "node_modules", "axe-core", "package.json")).version;
const st = JSON.parse(fs.readFileSync(stateFile, "utf8"));

const summary = { axe: axeVersion, pages: [], console: [], pageErrors: [], failedRequests: [], httpErrors: [], expectedHTTP: [], actions: {} };
const problems = [];

function check(ok, what) {
  if (!ok) problems.push(what);
  return ok;
}

async function main() {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US", timezoneId: "UTC" });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    // What the script provokes on purpose: the promotion its gate refuses,
    // and the approval its own requester may not give (twice).
    const expected = [
      { method: "POST", path: new RegExp(`^/v1/registry/models/${st.model}/promote$`), status: 403 },
      { method: "POST", path: /^\/v1\/registry\/approvals\/[^/]+$/, status: 403 },
    ];
    page.on("console", (m) => {
      if (m.type() === "error") summary.console.push(m.text());
    });
    page.on("pageerror", (e) => summary.pageErrors.push(String(e)));
    page.on("requestfailed", (r) => summary.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure() && r.failure().errorText}`));
    page.on("response", (r) => {
      if (r.status() < 400) return;
      const u = new URL(r.url());
      const i = expected.findIndex((e) => e.method === r.request().method() && e.path.test(u.pathname) && e.status === r.status());
      if (i >= 0) summary.expectedHTTP.push(`${r.status()} ${r.request().method()} ${u.pathname}`);
      else summary.httpErrors.push(`${r.status()} ${r.request().method()} ${u.pathname}${u.search}`);
    });

    const heading = (name) => page.getByRole("heading", { level: 1, name });
    const ready = async (name) => {
      await heading(name).waitFor();
      await page.locator('main[data-state="ready"]').waitFor();
    };
    let n = 0;
    const shot = async (name) => {
      const file = path.join(outDir, `${String(++n).padStart(2, "0")}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      const violations = await axe();
      summary.pages.push({ name, url: page.url(), title: await page.title(), screenshot: file, violations });
      for (const v of violations.filter((v) => v.impact === "serious" || v.impact === "critical")) {
        problems.push(`axe on ${name}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.join(" | ")})`);
      }
    };
    const axe = async () => {
      await page.evaluate(axeSource);
      const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
      return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((x) => x.target.join(" ")).slice(0, 5) }));
    };

    // Keyboard: the first Tab reaches the skip link, and it moves the
    // focus to the page's content.
    await page.goto(base + "/");
    await ready("Overview");
    await page.keyboard.press("Tab");
    check((await page.evaluate(() => document.activeElement.id)) === "skip", "the first Tab does not reach the skip link");
    await page.keyboard.press("Enter");
    check((await page.evaluate(() => document.activeElement.id)) === "main", "the skip link does not move the focus to <main>");

    // Overview: the models with aliases and verdicts, the deployment, the
    // latest events (live stream).
    const champRow = page.locator("table.models tbody tr", { has: page.locator(".badge-alias", { hasText: /^champion$/ }) });
    await champRow.waitFor();
    check((await champRow.locator("th").innerText()).includes(`${st.model}@v${st.champion}`), "overview: champion is not on the champion's row");
    check(await page.locator("table.models tbody tr", { hasText: `${st.model}@v${st.candidate}` }).locator(".badge-bad", { hasText: "fail" }).isVisible(), "overview: the candidate's fail verdict is not shown");
    await page.locator("ol.events li .event-type").first().waitFor();
    await page.locator("#live", { hasText: "live" }).waitFor();
    check(await page.getByRole("link", { name: st.deployment, exact: true }).isVisible(), "overview: the deployment is not listed");
    await shot("overview");

    // The champion: metrics and gate verdicts with reasons.
    await champRow.locator("th a").click();
    await ready(`Model ${st.model}@v${st.champion}`);
    check(await page.locator("table.gates").getByText("macro_f1 1.000 >= 0.500: pass").isVisible(), "champion: the gate's reason is not shown");
    await shot("champion");

    // Its lineage, and from the graph to the dataset version.
    await page.getByRole("link", { name: "Lineage graph" }).click();
    await ready(`Lineage of run ${st.champ_run}`);
    for (const kind of ["dataset", "recipe", "base", "run", "adapter", "model version", "deployment"]) {
      check((await page.locator(`svg a.node[data-kind="${kind}"]`).count()) === 1, `lineage: no ${kind} node in the graph`);
    }
    check((await page.locator('svg a.node[data-kind="dataset"] .node-hash').textContent()) === st.dataset_id.slice(0, 12), "lineage: the dataset node's hash is not the champion's dataset version");
    check((await page.locator('svg a.node[data-kind="adapter"] .node-hash').textContent()) === st.adapter.replace("sha256:", "").slice(0, 12), "lineage: the adapter node's hash is not the champion's adapter");
    await shot("lineage");
    await page.locator('svg a.node[data-kind="dataset"]').click();
    await ready(new RegExp(`^Dataset ${st.dataset} ${st.dataset_id.slice(0, 12)}`));
    check(await page.locator("table.bars").first().isVisible(), "dataset: no label counts");
    await shot("dataset-version");

    // Back to the graph, on to the run and its loss curve.
    await page.goBack();
    await ready(`Lineage of run ${st.champ_run}`);
    await page.locator('svg a.node[data-kind="run"]').click();
    await ready(new RegExp(`^Run ${st.champ_run}`));
    const lossChart = page.locator("figure.chart", { hasText: "Training loss by step" });
    await lossChart.locator("canvas").waitFor();
    check(Number(await lossChart.getAttribute("data-points")) >= 2, "run: the loss curve has fewer than 2 points");
    await shot("run-loss-curve");

    // The eval report: metrics per slice, confusion matrix, gates.
    await page.getByRole("link", { name: `Model ${st.model}@v${st.champion}` }).click();
    await ready(`Model ${st.model}@v${st.champion}`);
    await page.getByRole("link", { name: "Latest eval report" }).click();
    await ready(/^Eval report/);
    check(await page.locator("table.confusion").first().isVisible(), "report: no confusion matrix");
    check(await page.locator("table.gates").isVisible(), "report: no gates");
    check(await page.getByRole("link", { name: `${st.model}@v${st.champion}`, exact: true }).first().isVisible(), "report: no link to its model version");
    await shot("eval-report");

    // The candidate: promotion refused by its failed gate, then promoted
    // with an override, then rolled back — each with a reason.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Overview" }).click();
    await ready("Overview");
    await page.locator("table.models").getByRole("link", { name: `${st.model}@v${st.candidate}`, exact: true }).click();
    await ready(`Model ${st.model}@v${st.candidate}`);
    const promote = page.locator("form", { has: page.getByRole("heading", { name: `Promote ${st.model}@v${st.candidate}` }) });
    await promote.getByLabel("Reason", { exact: true }).fill(st.promote_reason);
    await promote.getByRole("button", { name: "Promote" }).focus();
    await page.keyboard.press("Enter"); // submitted from the keyboard
    const refusal = promote.getByRole("alert");
    await refusal.waitFor();
    const refusalText = await refusal.innerText();
    summary.actions.refusal = refusalText;
    check(/Refused/.test(refusalText) && /HTTP 403, forbidden/.test(refusalText) && /p95_ms/.test(refusalText), `promote: the refusal does not name the failed gate: ${refusalText}`);
    await shot("promotion-refused");
    await promote.getByLabel("Override failed gates").check();
    await promote.getByLabel("Override reason").fill(st.override_reason);
    await promote.getByRole("button", { name: "Promote" }).click();
    const promoted = promote.locator(".alert-good", { hasText: "Promoted" });
    await promoted.waitFor();
    summary.actions.promoted = await promoted.innerText();
    check(summary.actions.promoted.includes(`champion now points at ${st.model}@v${st.candidate}`), `promote: ${summary.actions.promoted}`);
    await page.locator("h1 .badge-alias", { hasText: /^champion$/ }).waitFor();
    const rollback = page.locator("form", { has: page.getByRole("heading", { name: `Roll back an alias of ${st.model}` }) });
    await rollback.getByLabel("Reason", { exact: true }).fill(st.rollback_reason);
    await rollback.getByRole("button", { name: "Roll back" }).click();
    const rolled = rollback.locator(".alert-good", { hasText: "Rolled back" });
    await rolled.waitFor();
    summary.actions.rolledBack = await rolled.innerText();
    check(summary.actions.rolledBack.includes(`champion now points at ${st.model}@v${st.champion} again`), `rollback: ${summary.actions.rolledBack}`);
    await page.locator("table.history tbody tr", { hasText: st.rollback_reason }).waitFor();
    await page.locator("h1 .badge-alias").waitFor({ state: "detached" });
    await shot("promoted-and-rolled-back");

    // An alias that needs a second person (the server runs with
    // --require-approval): the promotion waits, its requester's approval
    // is refused, another person's is taken.
    await promote.getByLabel("Alias").fill(st.approval_alias);
    await promote.getByLabel("Reason", { exact: true }).fill(st.approval_reason);
    await promote.getByRole("button", { name: "Promote" }).click();
    const waiting = promote.locator(".alert-wait", { hasText: "Approval needed" });
    await waiting.waitFor();
    summary.actions.approvalNeeded = await waiting.innerText();
    const approval = page.locator("form", { has: page.getByRole("heading", { name: /^Approval / }) });
    await approval.getByLabel("Reason", { exact: true }).fill(st.approve_reason);
    await approval.getByRole("button", { name: "Approve" }).click();
    const selfRefusal = page.locator("section", { has: page.getByRole("heading", { name: "Pending approvals" }) }).getByRole("alert");
    await selfRefusal.waitFor();
    summary.actions.selfApproval = await selfRefusal.innerText();
    check(/Refused/.test(summary.actions.selfApproval) && /cannot approve it/.test(summary.actions.selfApproval), `self-approval: ${summary.actions.selfApproval}`);
    await shot("approval-refused");
    // Another name typed as "Acting as" is still the same principal: the
    // server ignores it and refuses again.
    await approval.getByLabel("Acting as").fill(st.approver);
    await Promise.all([
      page.waitForResponse((r) => /\/v1\/registry\/approvals\//.test(r.url()) && r.status() === 403),
      approval.getByRole("button", { name: "Approve" }).click(),
    ]);
    // A second person is a second token: the page's requests carry the
    // approver's while it approves.
    await page.setExtraHTTPHeaders({ Authorization: `Bearer ${st.approver_token}` });
    await approval.getByRole("button", { name: "Approve" }).click();
    const approved = page.locator(".alert-good", { hasText: "Approved" });
    await approved.waitFor();
    await page.setExtraHTTPHeaders({});
    summary.actions.approved = await approved.innerText();
    check(summary.actions.approved.includes(`${st.approval_alias} now points at ${st.model}@v${st.candidate}`), `approval: ${summary.actions.approved}`);
    await page.locator("h1 .badge-alias", { hasText: st.approval_alias }).waitFor();
    await shot("approved");

    // A live run: started here through the API, followed on its page until
    // its curve grows, then cancelled from the page.
    const started = await page.request.post(base + "/v1/runs", { data: { recipe: st.long_recipe } });
    check(started.ok(), `start ${st.long_recipe}: HTTP ${started.status()}`);
    const run = await started.json();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Runs" }).click();
    await ready("Runs");
    await page.getByRole("link", { name: run.id, exact: true }).click();
    await ready(new RegExp(`^Run ${run.id}`));
    const live = page.locator("figure.chart", { hasText: "Training loss by step" });
    await page.waitForFunction(() => Number(document.querySelector("figure.chart").dataset.points) >= 3);
    const seen = Number(await live.getAttribute("data-points"));
    await page.waitForFunction((seen) => Number(document.querySelector("figure.chart").dataset.points) > seen, seen);
    summary.actions.livePoints = Number(await live.getAttribute("data-points"));
    await shot("live-run");
    await page.getByRole("button", { name: "Cancel run" }).click();
    await page.locator("h1 .badge", { hasText: "canceled" }).waitFor();
    await page.locator(".cancel").waitFor({ state: "hidden" });
    summary.actions.canceled = run.id;
    await shot("run-canceled");

    // The remaining pages.
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Runs" }).click();
    await ready("Runs");
    await page.locator("table tbody tr", { hasText: run.id }).locator(".badge", { hasText: "canceled" }).waitFor();
    await shot("runs");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Datasets" }).click();
    await ready("Datasets and bases");
    await shot("datasets");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Monitoring" }).click();
    await ready("Monitoring");
    await shot("monitoring");
    await page.getByRole("link", { name: st.monitor, exact: true }).click();
    await ready(`Monitor ${st.monitor}`);
    const driftCharts = page.locator("figure.chart");
    await driftCharts.first().locator("canvas").waitFor();
    check((await driftCharts.count()) >= 3, `monitor: ${await driftCharts.count()} charts, want one per detector and performance`);
    check((await page.locator("table", { hasText: "Drifted windows with their evidence" }).locator("tbody tr .badge, tbody tr td ul li").count()) > 0, "monitor: no drifted window with its evidence");
    await shot("monitor");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Triggers" }).click();
    await ready("Triggers");
    await page.getByRole("link", { name: st.trigger, exact: true }).click();
    await ready(`Trigger ${st.trigger}`);
    await shot("trigger");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Overview" }).click();
    await ready("Overview");
    await page.getByRole("link", { name: st.deployment, exact: true }).click();
    await ready(new RegExp(`^Deployment ${st.deployment}`));
    await shot("deployment");

    // Chrome writes each HTTP error of a fetch to the console; the
    // expected refusal's line is the only one allowed.
    const allowed = summary.expectedHTTP.map((e) => `status of ${e.split(" ")[0]}`);
    const unexpected = summary.console.filter((c) => {
      const i = allowed.findIndex((a) => c.startsWith("Failed to load resource") && c.includes(a));
      if (i < 0) return true;
      allowed.splice(i, 1);
      return false;
    });
    check(unexpected.length === 0, `console errors: ${unexpected.join(" | ")}`);
    check(summary.pageErrors.length === 0, `page errors: ${summary.pageErrors.join(" | ")}`);
    check(summary.failedRequests.length === 0, `failed requests: ${summary.failedRequests.join(" | ")}`);
    check(summary.httpErrors.length === 0, `unexpected HTTP errors: ${summary.httpErrors.join(" | ")}`);
    // The gate's refusal, then the requester's approval refused twice (as
    // itself, then under another typed name, which the server ignores).
    const want = ["promote", "approvals", "approvals"];
    check(summary.expectedHTTP.length === want.length && want.every((w, i) => summary.expectedHTTP[i].includes(w)),
      `expected the three refusals' 403s, saw: ${summary.expectedHTTP.join(" | ") || "none"}`);
    await context.close();
  } finally {
    await browser.close();
  }
}

main()
  .catch((err) => problems.push(`${err.name}: ${err.message}`))
  .finally(() => {
    summary.problems = problems;
    process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    process.exit(problems.length ? 1 : 0);
  });
