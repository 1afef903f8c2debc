// Drives Debian's chromium through the dashboard of a real tailor server
// (e2e/dashboard_test.go builds the state and starts the server):
//
//   overview (as "local", --insecure-local) → log-in: a wrong token refused
//   in place, then an operator's token: the candidate's page has no
//   promote, roll back or approve forms, the audit page its verify status
//   but no entries; the operator's token revoked, the page reloaded: the
//   kept token refused and forgotten, the page goes on as local → log in
//   as the admin → champion → its lineage
//   graph → the dataset version → back to the run's loss curve and its
//   usage → the eval report → the candidate whose gate fails: promotion
//   refused, promoted with an override and a reason, rolled back with a
//   reason, promoted to an alias that needs approval: its requester's
//   approval refused, then given by a second person (logged in with their
//   own token) → a live run followed and cancelled → datasets, monitoring
//   and a monitor's drift, triggers and the deployment → the audit log
//   (verified, and the admin's promotion among its entries) → usage →
//   tokens as the admin: the list without secrets, a token created (its
//   secret shown once, with a warning, and copied), used to log in (a
//   viewer: no Tokens link, the page opened by its URL refuses), revoked
//   with a reason and refused at the next log-in → a token that is admin
//   in default and viewer in another project: switched there (the header
//   names it, requests carry it, the token forms and the audit entries
//   go, usage is the other project's), kept across a reload, switched
//   back.
//
// On every page it saves a full-page screenshot and runs axe-core; at the
// end it fails on any serious or critical axe violation, any console error
// or page error, any failed request and any HTTP error other than the
// refusals the script provokes (and the event streams a log-in or log-out
// closes on purpose). It prints a JSON summary on stdout.
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
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US", timezoneId: "UTC", permissions: ["clipboard-read", "clipboard-write"] });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    // What the script provokes on purpose: a wrong token refused, the
    // promotion its gate refuses, and the approval its own requester may
    // not give.
    const expected = [
      { method: "GET", path: /^\/v1\/whoami$/, status: 401 }, // three times: a wrong token, two revoked ones
      { method: "POST", path: new RegExp(`^/v1/registry/models/${st.model}/promote$`), status: 403 },
      { method: "POST", path: /^\/v1\/registry\/approvals\/[^/]+$/, status: 403 },
    ];
    page.on("console", (m) => {
      if (m.type() === "error") summary.console.push(m.text());
    });
    page.on("pageerror", (e) => summary.pageErrors.push(String(e)));
    // The project each API request acts in (X-Tailor-Project; "" for the
    // token's own), by path.
    const sentProject = new Map();
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith("/v1/")) sentProject.set(u.pathname, r.headers()["x-tailor-project"] || "");
    });
    // A log-in or log-out closes the event stream opened with the old
    // credentials (the page reconnects with the new ones), and so does a
    // reload or a page.goto: those aborts are counted apart, and may not
    // outnumber the steps that cause them (streamEnds).
    let streamEnds = 0;
    summary.streamsClosed = 0;
    // A page's reads are aborted by the page itself when the user moves
    // on before they answered (each page's fetches carry its signal), so
    // an aborted GET of the API is counted apart too; an aborted write,
    // or a read that failed any other way (refused, reset), is a failure.
    summary.readsAborted = 0;
    page.on("requestfailed", (r) => {
      const err = r.failure() && r.failure().errorText;
      const path = new URL(r.url()).pathname;
      if (err === "net::ERR_ABORTED" && path === "/v1/events") summary.streamsClosed++;
      else if (err === "net::ERR_ABORTED" && r.method() === "GET" && path.startsWith("/v1/")) summary.readsAborted++;
      else summary.failedRequests.push(`${r.method()} ${r.url()}: ${err}`);
    });
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
    check((await page.locator("#who .who-name").innerText()) === "local", "header: not acting as local without a token");
    await shot("overview");

    // Log-in: a wrong token is refused in place; an operator's token is
    // taken, and the header says who, where and which role.
    const nav = page.getByRole("navigation", { name: "Main" });
    // Each waits for the page shown after it (the one the log-in came
    // from, or the same page redrawn), so that the next step does not cut
    // its reads off.
    const login = async (token, who, heading) => {
      await page.locator("#login").click();
      await ready("Log in");
      await page.getByLabel("Token", { exact: true }).fill(token);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.locator("#who .who-name", { hasText: new RegExp(`^${who}$`) }).waitFor();
      await ready(heading);
      streamEnds++;
    };
    const logout = async () => {
      await page.locator("#logout").click();
      await page.locator("#who .who-name", { hasText: /^local$/ }).waitFor();
      await page.locator('main[data-state="ready"]').waitFor();
      streamEnds++;
    };
    await page.locator("#login").click();
    await ready("Log in");
    check((await page.getByLabel("Token", { exact: true }).getAttribute("type")) === "password", "log-in: the token field is not a password field");
    await page.getByLabel("Token", { exact: true }).fill("tlr_0000000000000000_" + "0".repeat(64));
    await page.getByRole("button", { name: "Log in" }).click();
    const badLogin = page.locator("form.login").getByRole("alert");
    await badLogin.waitFor();
    summary.actions.badLogin = await badLogin.innerText();
    check(/HTTP 401/.test(summary.actions.badLogin), `log-in: a wrong token's refusal: ${summary.actions.badLogin}`);
    check((await page.locator("#who .who-name").innerText()) === "local", "log-in: a refused token changed who the page acts as");
    await shot("login-refused");
    await page.getByLabel("Token", { exact: true }).fill(st.operator_token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.locator("#who .who-name", { hasText: new RegExp(`^${st.operator}$`) }).waitFor();
    streamEnds++;
    await ready("Overview");
    check((await page.locator("#who .who-role").innerText()) === "operator" && (await page.locator("#who .who-project").innerText()) === "default", `header as operator: ${await page.locator("#who").innerText()}`);
    check(await page.evaluate(() => !Object.keys(localStorage).some((k) => (localStorage.getItem(k) || "").includes("tlr_"))), "the token is in localStorage");
    check(!(await nav.getByRole("link", { name: "Tokens" }).isVisible()), "an operator sees the Tokens link");
    // An operator sees the candidate without the admin's forms.
    await page.locator("table.models").getByRole("link", { name: `${st.model}@v${st.candidate}`, exact: true }).click();
    await ready(`Model ${st.model}@v${st.candidate}`);
    check((await page.getByRole("button", { name: "Promote" }).count()) === 0 && (await page.getByRole("button", { name: "Roll back" }).count()) === 0, "operator: promote or roll back is offered");
    check(await page.getByText("To promote or roll back needs the admin role in project default; you are operator").isVisible(), "operator: no note on the missing actions");
    await shot("model-as-operator");
    // The audit log's entries are for admins: an operator sees the verify
    // status and a note, and the page asks for no entries.
    await nav.getByRole("link", { name: "Audit" }).click();
    await ready("Audit log");
    await page.locator(".verify", { hasText: "Verified" }).waitFor();
    check(await page.getByText("To read the audit log's entries needs the admin role").isVisible(), "audit as operator: no note instead of the entries");
    check((await page.locator("table.audit").count()) === 0, "audit as operator: entries shown");
    await shot("audit-as-operator");
    // Reloaded, the tab keeps the log-in (sessionStorage).
    await page.reload();
    streamEnds++; // the reload closes the stream too
    await ready("Audit log");
    check((await page.locator("#who .who-name").innerText()) === st.operator, "a reload lost the log-in");
    // The operator's token revoked behind the page's back: on the next
    // load the kept token is refused (401), forgotten, and the page says
    // so and goes on as local (--insecure-local).
    const revoked = await page.request.post(`${base}/v1/tokens/tlr_${st.operator_token.split("_")[1]}/revoke`);
    check(revoked.ok(), `revoke the operator's token: HTTP ${revoked.status()}`);
    await page.reload();
    streamEnds++;
    await page.locator("#who .who-name", { hasText: /^local$/ }).waitFor();
    await ready("Audit log");
    const stale = await page.locator("#who [role=alert]").innerText();
    summary.actions.staleToken = stale;
    check(/Your token was refused .*revoked.*log in again/.test(stale), `a revoked kept token: ${stale}`);
    check(await page.evaluate(() => sessionStorage.length === 0), "the revoked token is still kept");
    await login(st.admin_token, st.admin, "Audit log");
    check((await page.locator("#who .who-role").innerText()) === "admin", "header as admin: role");
    await nav.getByRole("link", { name: "Overview" }).click();
    await ready("Overview");

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
    const runUsage = await page.locator("section", { has: page.getByRole("heading", { name: "Usage and budget" }) }).innerText();
    summary.actions.runUsage = runUsage;
    check(/CPU time/.test(runUsage) && /FLOPs/.test(runUsage) && /Peak RSS/.test(runUsage) && /kWh (measured|estimated)/.test(runUsage) && /USD/.test(runUsage) && /Budget in force/.test(runUsage), `run: usage: ${runUsage}`);
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
    // After the answer the page re-reads the model, its history and the
    // pending approvals; the log-out below must not cut those reads off.
    const reread = page.waitForResponse((r) => r.url().includes("/approvals?state=pending"));
    await approval.getByRole("button", { name: "Approve" }).click();
    await (await reread).finished();
    const selfRefusal = page.locator("section", { has: page.getByRole("heading", { name: "Pending approvals" }) }).getByRole("alert");
    await selfRefusal.waitFor();
    summary.actions.selfApproval = await selfRefusal.innerText();
    check(/Refused/.test(summary.actions.selfApproval) && /cannot approve it/.test(summary.actions.selfApproval), `self-approval: ${summary.actions.selfApproval}`);
    await shot("approval-refused");
    // A second person is a second token: log out, log in as the reviewer,
    // who sees the pending approval on the same page and approves it.
    await logout();
    await login(st.approver_token, st.approver, `Model ${st.model}@v${st.candidate}`);
    const approval2 = page.locator("form", { has: page.getByRole("heading", { name: /^Approval / }) });
    await approval2.getByLabel("Reason", { exact: true }).fill(st.approve_reason);
    await approval2.getByRole("button", { name: "Approve" }).click();
    const approved = page.locator(".alert-good", { hasText: "Approved" });
    await approved.waitFor();
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

    // A run stopped at its budget: its usage names the limit, and an
    // admin resumes it with a raised one.
    await page.goto(`${base}/#/runs/${encodeURIComponent(st.budget_run)}`);
    streamEnds++; // a new document: the old one's stream is closed
    await ready(new RegExp(`^Run ${st.budget_run}`));
    const usageSection = page.locator("section", { has: page.getByRole("heading", { name: "Usage and budget" }) });
    const stopped = await usageSection.innerText();
    check(/Budget in force\s+max_steps 4/.test(stopped) && /budget max_steps 4 reached/.test(stopped), `budget run: usage: ${stopped}`);
    const resume = page.locator("form", { has: page.getByRole("heading", { name: `Resume ${st.budget_run} with a raised budget` }) });
    await resume.getByLabel("Max steps").fill("100");
    await shot("run-budget-exceeded");
    await resume.getByRole("button", { name: "Resume" }).click();
    const resumed = usageSection.locator(".alert-good", { hasText: "Resumed" });
    await resumed.waitFor();
    summary.actions.resumed = await resumed.innerText();
    // The usage is redrawn from the server after the resume: wait for it.
    await usageSection.getByText(/max_steps 100/).first().waitFor({ timeout: 20000 }).catch(() => {});
    check((await usageSection.innerText()).includes("max_steps 100"), "budget run: the raised budget is not shown after the resume");
    summary.actions.resumedRun = st.budget_run;

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

    // The audit log, newest first: the chain verifies, and the admin's
    // promotion of the candidate is an entry with the admin as actor.
    await nav.getByRole("link", { name: "Audit" }).click();
    await ready("Audit log");
    const verify = await page.locator(".verify").innerText();
    summary.actions.verify = verify;
    check(/Verified: the chain holds/.test(verify) && /Head \d+:[0-9a-f]{64}/.test(verify), `audit: verify: ${verify}`);
    const moves = page.locator("table.audit tbody tr", { has: page.locator("td code", { hasText: /^model\.alias\.moved$/ }) })
      .filter({ has: page.locator(".object", { hasText: st.candidate_id.replace(/^sha256:/, "").slice(0, 12) }) })
      .filter({ has: page.locator("td", { hasText: new RegExp(`^${st.admin}$`) }) });
    check((await moves.count()) >= 1, "audit: no alias move of the candidate by the admin");
    if ((await moves.count()) >= 1) {
      // The oldest of them (the table is newest first) is the promotion.
      const row = moves.last();
      const cells = await row.locator("th, td").allInnerTexts();
      summary.actions.auditEntry = { seq: Number(cells[0]), actor: cells[2], project: cells[3], action: cells[4], object: cells[5], hash: cells[6] };
    }
    await shot("audit");

    // Usage by project, model and day, energy labelled, one chart.
    await nav.getByRole("link", { name: "Usage" }).click();
    await ready("Usage");
    const usageChart = page.locator("figure.chart", { hasText: "Energy by day" });
    await usageChart.locator("canvas").waitFor();
    for (const [group, key] of [["By project", "default"], ["By model", st.model]]) {
      const tbl = page.locator("section", { has: page.getByRole("heading", { name: group }) }).locator("table.usage");
      const row = tbl.locator("tbody tr", { has: page.locator("th", { hasText: new RegExp(`^${key}$`) }) });
      check((await row.count()) === 1, `usage ${group}: no row ${key}`);
      if ((await row.count()) === 1) check(/kWh (measured|estimated)/.test(await row.innerText()), `usage ${group}: ${key}'s energy has no label: ${await row.innerText()}`);
      check((await tbl.locator("tbody tr.total").count()) === 1, `usage ${group}: no total row`);
    }
    const dayRows = page.locator("section", { has: page.getByRole("heading", { name: "By day (UTC)" }) }).locator("table.usage tbody tr:not(.total)");
    check((await dayRows.count()) >= 1, "usage by day: no day");
    summary.actions.usageByDay = await dayRows.first().innerText();
    await shot("usage");

    // Tokens, as an admin: the list names tokens by id and shows no
    // secret; a token created is shown once with a warning and copied;
    // it logs in (a viewer: no Tokens link, and the page opened by its
    // URL refuses); revoked with a reason, it is refused at the log-in.
    await logout();
    await login(st.admin_token, st.admin, "Usage");
    const tokensLink = nav.getByRole("link", { name: "Tokens" });
    check(await tokensLink.isVisible(), "tokens: an admin has no Tokens link");
    await tokensLink.click();
    await ready("Tokens");
    const tokenRows = page.locator("table.tokens tbody tr");
    const tokenRow = (id) => tokenRows.filter({ has: page.locator("code.token-id", { hasText: new RegExp(`^${id}$`) }) });
    const secretOf = (tok) => tok.split("_")[2];
    const idOf = (tok) => "tlr_" + tok.split("_")[1];
    for (const [tok, who, state] of [[st.admin_token, st.admin, "live"], [st.approver_token, st.approver, "live"], [st.operator_token, st.operator, "revoked"], [st.switcher_token, st.switcher, "live"]]) {
      const row = tokenRow(idOf(tok));
      check((await row.count()) === 1, `tokens: no row for ${who}'s ${idOf(tok)}`);
      if ((await row.count()) === 1) {
        const text = await row.innerText();
        check(text.includes(who) && text.includes(state), `tokens: ${who}'s row: ${text}`);
      }
    }
    const secrets = () => [st.admin_token, st.approver_token, st.operator_token, st.switcher_token].map(secretOf);
    let html = await page.content();
    check(!secrets().some((x) => html.includes(x)), "tokens: a secret is on the page");
    await shot("tokens");
    const create = page.locator("form", { has: page.getByRole("heading", { name: "Create a token in default" }) });
    await create.getByLabel("Principal").fill(st.new_principal);
    await create.getByLabel("Role").selectOption("viewer");
    await create.getByLabel("Expires").selectOption("24h");
    await create.getByRole("button", { name: "Create token" }).click();
    const secretField = page.locator("#new-token-secret");
    await secretField.waitFor();
    const newToken = await secretField.inputValue();
    check(/^tlr_[0-9a-f]{16}_[0-9a-f]{64}$/.test(newToken), `token created: the field holds ${newToken.length} characters, not a token`);
    const newID = idOf(newToken);
    summary.actions.newTokenID = newID;
    check(await page.getByText("this is the only time its secret is shown").isVisible(), "token created: no warning that the secret is shown once");
    await page.getByRole("button", { name: "Copy" }).click();
    await page.locator(".copy-state", { hasText: "Copied" }).waitFor();
    check((await page.evaluate(() => navigator.clipboard.readText())) === newToken, "token created: Copy did not put the token on the clipboard");
    await tokenRow(newID).waitFor();
    const newRow = await tokenRow(newID).innerText();
    check(newRow.includes(st.new_principal) && newRow.includes("viewer") && newRow.includes(st.admin) && newRow.includes("live") && !newRow.includes(secretOf(newToken)), `token created: its row: ${newRow}`);
    await shot("token-created");
    // Shown once: drawn again, the page has its id and not its secret.
    await nav.getByRole("link", { name: "Usage" }).click();
    await ready("Usage");
    await tokensLink.click();
    await ready("Tokens");
    await tokenRow(newID).waitFor();
    html = await page.content();
    check((await secretField.count()) === 0 && !html.includes(secretOf(newToken)), "tokens: the new secret is shown again");
    // Logged in with it: a viewer, warned of its expiry, without the
    // Tokens link; the page opened by its URL refuses.
    await logout();
    await login(newToken, st.new_principal, "Tokens");
    check((await page.locator("#who .who-role").innerText()) === "viewer", `header as ${st.new_principal}: ${await page.locator("#who").innerText()}`);
    const expiry = await page.locator("#who .who-expiry").innerText().catch(() => "");
    check(/^Token expires in 2[34] hours/.test(expiry), `header: no warning of the day-long token's expiry: ${expiry}`);
    check(!(await tokensLink.isVisible()), "a viewer sees the Tokens link");
    await nav.getByRole("link", { name: "Overview" }).click();
    await ready("Overview");
    await page.goto(`${base}/#/tokens`);
    streamEnds++;
    await ready("Tokens");
    const viewerRefusal = await page.locator(".refusal").innerText();
    summary.actions.tokensRefusal = viewerRefusal;
    check(/Refused/.test(viewerRefusal) && /needs the admin role in project default; you are viewer there/.test(viewerRefusal), `tokens as a viewer: ${viewerRefusal}`);
    check((await page.getByRole("button", { name: "Create token" }).count()) === 0 && (await page.locator("table.tokens").count()) === 0, "tokens as a viewer: the list or the form is shown");
    await shot("tokens-as-viewer");
    // Revoked with a reason by the admin, it is refused at the log-in.
    await logout();
    await login(st.admin_token, st.admin, "Tokens");
    const revokeForm = page.locator("form", { has: page.getByRole("heading", { name: "Revoke a token" }) });
    await revokeForm.getByLabel("Token", { exact: true }).selectOption(newID);
    await revokeForm.getByLabel("Reason").fill(st.token_revoke_reason);
    await revokeForm.getByRole("button", { name: "Revoke" }).click();
    await page.locator(".alert-good", { hasText: `Revoked ${newID}` }).waitFor();
    await tokenRow(newID).locator(".badge", { hasText: "revoked" }).waitFor();
    await shot("token-revoked");
    await logout();
    await page.locator("#login").click();
    await ready("Log in");
    await page.getByLabel("Token", { exact: true }).fill(newToken);
    await page.getByRole("button", { name: "Log in" }).click();
    const revokedLogin = page.locator("form.login").getByRole("alert");
    await revokedLogin.waitFor();
    summary.actions.revokedLogin = await revokedLogin.innerText();
    check(/HTTP 401/.test(summary.actions.revokedLogin) && /was revoked/.test(summary.actions.revokedLogin), `log-in with the revoked token: ${summary.actions.revokedLogin}`);
    check((await page.locator("#who .who-name").innerText()) === "local", "log-in: a revoked token changed who the page acts as");

    // The project switch: a token that is admin in default and viewer in
    // the other project. The header names the project and switches it;
    // every request then carries it; the actions follow the role there;
    // a reload keeps it.
    await page.getByLabel("Token", { exact: true }).fill(st.switcher_token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.locator("#who .who-name", { hasText: new RegExp(`^${st.switcher}$`) }).waitFor();
    streamEnds++;
    await ready("Tokens");
    const projectIs = async (name, role) =>
      (await page.locator("#who .who-project").innerText()) === name && (await page.locator("#who .who-role").innerText()) === role;
    check(await projectIs("default", "admin"), `header as ${st.switcher}: ${await page.locator("#who").innerText()}`);
    const switcher = page.getByLabel("Act in");
    check((await switcher.locator("option").allInnerTexts()).join(" | ") === `${st.other_project} (viewer) | default (admin)`, `project switch: ${await switcher.innerText()}`);
    check((await page.getByRole("button", { name: "Create token" }).count()) === 1 && (await tokensLink.isVisible()), "as admin in default: no token forms or Tokens link");
    const switchTo = async (name) => {
      await switcher.selectOption(name);
      await page.getByRole("button", { name: "Switch" }).click();
      await page.locator("#who .who-project", { hasText: new RegExp(`^${name}$`) }).waitFor();
      await page.locator('main[data-state="ready"]').waitFor();
      streamEnds++;
    };
    await switchTo(st.other_project);
    await ready("Tokens");
    check(await projectIs(st.other_project, "viewer"), `header after the switch: ${await page.locator("#who").innerText()}`);
    check((await page.getByRole("button", { name: "Create token" }).count()) === 0 && !(await tokensLink.isVisible()), `as viewer in ${st.other_project}: token forms or the Tokens link shown`);
    check(new RegExp(`needs the admin role in project ${st.other_project}; you are viewer there`).test(await page.locator(".refusal").innerText()), "tokens after the switch: no refusal naming the project");
    await shot("tokens-other-project");
    // The audit log: its status, no entries (a viewer there); the
    // request carried the project.
    await nav.getByRole("link", { name: "Audit" }).click();
    await ready("Audit log");
    check(sentProject.get("/v1/audit/verify") === st.other_project && sentProject.get("/v1/events") === st.other_project, `requests after the switch act in ${sentProject.get("/v1/audit/verify")}, events in ${sentProject.get("/v1/events")}`);
    check((await page.locator("table.audit").count()) === 0 && (await page.getByText(`To read the audit log's entries needs the admin role in project ${st.other_project}`).isVisible()), "audit in the other project: entries shown, or no note");
    // Usage is read per project: nothing ran in the other one.
    await nav.getByRole("link", { name: "Usage" }).click();
    await ready("Usage");
    const byProject = page.locator("section", { has: page.getByRole("heading", { name: "By project" }) }).locator("table.usage");
    check((await byProject.locator("tbody tr th", { hasText: /^default$/ }).count()) === 0, `usage in ${st.other_project} shows the default project's`);
    await shot("usage-other-project");
    // A reload keeps the project.
    await page.reload();
    streamEnds++;
    await ready("Usage");
    check(await projectIs(st.other_project, "viewer"), `a reload lost the project: ${await page.locator("#who").innerText()}`);
    // Back to default: the admin's actions again.
    await switchTo("default");
    await ready("Usage");
    check(await projectIs("default", "admin") && (await tokensLink.isVisible()), "back in default: not admin, or no Tokens link");
    check((await byProject.locator("tbody tr th", { hasText: /^default$/ }).count()) === 1, "usage back in default: no default row");
    await tokensLink.click();
    await ready("Tokens");
    check((await page.getByRole("button", { name: "Create token" }).count()) === 1 && sentProject.get("/v1/tokens") === "default", "tokens back in default: no create form, or the list asked elsewhere");
    await shot("tokens-back-in-default");

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
    // The wrong token, the revoked one, the gate's refusal, the
    // requester's approval, then the token revoked from its page.
    const want = ["401 GET /v1/whoami", "401 GET /v1/whoami", "403 POST /v1/registry/models/", "403 POST /v1/registry/approvals/", "401 GET /v1/whoami"];
    check(summary.expectedHTTP.length === want.length && want.every((w, i) => summary.expectedHTTP[i].startsWith(w)),
      `expected the five refusals, saw: ${summary.expectedHTTP.join(" | ") || "none"}`);
    // Each log-in, log-out, reload and page load closed at most the one
    // stream open then.
    check(summary.streamsClosed <= streamEnds, `${summary.streamsClosed} event streams closed for ${streamEnds} log-ins, log-outs, reloads and page loads`);
    summary.actions.streamEnds = streamEnds;
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
