// A model version: what it is made of, its latest metrics and gate
// verdicts with their reasons, its reports, and the alias actions
// (promote, roll back, approve or reject) with their refusals.
import * as api from "../api.js";
import { h, fill, table, section, link, badge, hash, time, dl, okBox, short, modelRef } from "../dom.js";
import { field, actionForm } from "../forms.js";
import { gatesTable, sliceMetrics } from "./report.js";
import { may, withoutRole } from "../session.js";

export async function modelPage(ctx, name, ref) {
  const sig = { signal: ctx.signal };
  const [m, versions] = await Promise.all([
    api.get(api.path`/v1/registry/models/${name}/versions/${ref}`, sig),
    api.get("/v1/registry/models", { ...sig, query: { name } }),
  ]);
  const lastRef = (m.reports || [])[m.reports.length - 1];
  const last = lastRef ? await api.get(api.path`/v1/reports/${lastRef.digest}`, sig) : null;
  const byID = new Map(versions.map((v) => [v.id, v]));
  const lin = m.lineage || {};

  const aliasesBox = h("span", { class: "aliases" }, aliasBadges(m));
  const historyBox = h("div", null);
  // Pending approvals: their forms are rebuilt only when the set of
  // pending approvals changes; decisions show in one place that stays.
  const approvalsResult = h("div", { class: "form-result", "aria-live": "polite" });
  const approvalsList = h("div", { class: "actions" });
  const approvalsBox = h("div", { hidden: true }, section("Pending approvals", approvalsResult, approvalsList));
  let pendingIDs = "";
  const refresh = async () => {
    try {
      const [mm, hist, approvals] = await Promise.all([
        api.get(api.path`/v1/registry/models/${name}/versions/v${m.version}`, sig),
        api.get(api.path`/v1/registry/models/${name}/history`, sig),
        api.get(api.path`/v1/registry/models/${name}/approvals`, { ...sig, query: { state: "pending" } }),
      ]);
      fill(aliasesBox, aliasBadges(mm));
      fill(historyBox, historyTable(hist, byID));
      const ids = approvals.map((a) => a.id).join(" ");
      if (ids !== pendingIDs) {
        pendingIDs = ids;
        fill(approvalsList, may("admin") ? approvals.map((ap) => approvalForm(ap, byID, refresh, approvalsResult)) : [approvalsTable(approvals, byID), withoutRole("approve or reject", "admin")]);
      }
      approvalsBox.hidden = !approvals.length && !approvalsResult.childElementCount;
    } catch {
      // left the page, or the server is restarting: the next action refreshes
    }
  };
  await refresh();

  const report = last && last.report;
  const all = report && (report.slices || []).find((s) => s.slice === "all");
  return {
    title: `${modelRef(m)}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/", "Overview"), " / model ", name),
      h("h1", null, `Model ${modelRef(m)} `, aliasesBox, " ", m.verdict ? badge(m.verdict) : null),
      h(
        "p",
        { class: "links" },
        m.run_id ? link(`/runs/${encodeURIComponent(m.run_id)}`, "Training run and loss curve") : null,
        m.run_id ? link(`/lineage/${encodeURIComponent(m.run_id)}`, "Lineage graph") : null,
        lastRef ? link(`/reports/${encodeURIComponent(lastRef.digest)}`, "Latest eval report") : null,
      ),
      dl([
        ["Version id", hash(m.id)],
        ["Task", m.task],
        ["Base", lin.base ? link(`/bases/${encodeURIComponent(lin.base.name)}/${encodeURIComponent(m.base_id)}`, `${lin.base.name}@v${lin.base.version} `, hash(m.base_id)) : hash(m.base_id)],
        ["Adapter", hash(m.adapter)],
        ["Recipe", lin.recipe ? link(`/recipes/${encodeURIComponent(lin.recipe.name)}/${encodeURIComponent(lin.recipe.id)}`, `${lin.recipe.name}@v${lin.recipe.version} `, hash(lin.recipe.id)) : null],
        ["Dataset", lin.dataset ? link(`/datasets/${encodeURIComponent(lin.dataset.name)}/${encodeURIComponent(lin.dataset.id)}`, `${lin.dataset.name} `, hash(lin.dataset.id)) : null],
        ["Run", m.run_id ? link(`/runs/${encodeURIComponent(m.run_id)}`, m.run_id) : null],
        ["Registered", time(m.created_at)],
      ]),
      section(
        "Metrics",
        all ? sliceMetrics(all, report) : h("p", { class: "muted" }, "No eval report yet."),
        lastRef ? h("p", null, "From the latest report, ", link(`/reports/${encodeURIComponent(lastRef.digest)}`, short(lastRef.digest)), ` (${lastRef.split} split).`) : null,
      ),
      section("Gate verdicts", report && report.verdict ? gatesTable(report.verdict) : h("p", { class: "muted" }, "The latest report has no gates.")),
      section("Eval reports", reportsTable(m, lin)),
      section(
        "Actions",
        may("admin") ? h("div", { class: "actions" }, promoteForm(m, refresh), rollbackForm(m, versions, refresh)) : withoutRole("promote or roll back", "admin"),
      ),
      approvalsBox,
      section("Alias history", historyBox),
    ),
  };
}

function aliasBadges(m) {
  return (m.aliases || []).map((a) => badge(a, "alias"));
}

function reportsTable(m, lin) {
  return table(
    `Eval reports of ${modelRef(m)}, oldest first`,
    [
      ["Report", (r) => link(`/reports/${encodeURIComponent(r.digest)}`, short(r.digest))],
      ["Dataset", (r) => (lin.dataset && r.dataset_id === lin.dataset.id ? `${lin.dataset.name} ` : "") || hash(r.dataset_id)],
      ["Split", (r) => r.split],
      ["Verdict", (r) => badge(r.verdict)],
      ["Failed gates", (r) => (r.failed && r.failed.length ? r.failed.join("; ") : "—")],
      ["Created", (r) => time(r.created_at)],
    ],
    m.reports || [],
    { rowHeader: true },
  );
}

function promoteForm(m, refresh) {
  const alias = field("Alias", { name: "alias", value: "champion", required: true, pattern: "[a-z][a-z0-9_-]{0,62}", autocomplete: "off" });
  const reason = field("Reason", { name: "reason", required: true, rows: 2, maxlength: 4096 }, { textarea: true });
  const override = field("Override failed gates", { name: "override", type: "checkbox" }, { inline: true });
  const overrideReason = field("Override reason", { name: "override_reason", rows: 2, maxlength: 4096 }, {
    textarea: true,
    help: "Required with an override: why this version may go past its failed gates.",
  });
  return actionForm({
    title: `Promote ${modelRef(m)}`,
    fields: [alias, reason, override, overrideReason],
    submit: "Promote",
    what: () => `promote ${modelRef(m)} to ${alias.input.value}`,
    act: () =>
      api.post(api.path`/v1/registry/models/${m.name}/promote`, {
        version: m.id,
        alias: alias.input.value.trim(),
        reason: reason.input.value.trim(),
        override: override.input.checked,
        override_reason: overrideReason.input.value.trim(),
      }),
    ok: (p) =>
      p.approval
        ? h(
            "div",
            { class: "alert alert-wait", role: "status" },
            h("p", { class: "alert-title" }, "Approval needed"),
            h("p", null, `Moving ${p.approval.alias} to ${modelRef(m)} waits for a second person: approval ${p.approval.id}, requested by ${p.approval.requested_by}.`),
          )
        : okBox(h("p", { class: "alert-title" }, "Promoted"), h("p", null, `${p.move.alias} now points at ${modelRef(m)} (move #${p.move.seq}).`)),
    after: refresh,
  });
}

function rollbackForm(m, versions, refresh) {
  const aliases = [...new Set(versions.flatMap((v) => v.aliases || []))].sort();
  const alias = field("Alias", { name: "alias", value: aliases.includes("champion") ? "champion" : aliases[0] || "", required: true, list: "aliases-" + m.name, autocomplete: "off" });
  const reason = field("Reason", { name: "reason", required: true, rows: 2, maxlength: 4096 }, { textarea: true });
  const form = actionForm({
    title: `Roll back an alias of ${m.name}`,
    fields: [alias, reason],
    submit: "Roll back",
    what: () => `roll back ${m.name} ${alias.input.value}`,
    act: () => api.post(api.path`/v1/registry/models/${m.name}/rollback`, { alias: alias.input.value.trim(), reason: reason.input.value.trim() }),
    ok: (mv) => {
      const to = versions.find((v) => v.id === mv.to);
      return okBox(h("p", { class: "alert-title" }, "Rolled back"), h("p", null, `${mv.alias} now points at ${to ? modelRef(to) : short(mv.to)} again (move #${mv.seq}).`));
    },
    after: refresh,
  });
  form.append(h("datalist", { id: "aliases-" + m.name }, aliases.map((a) => h("option", { value: a }))));
  return form;
}

function versionName(byID, id) {
  const v = byID.get(id);
  return v ? link(`/models/${encodeURIComponent(v.name)}/v${v.version}`, `v${v.version}`) : id ? hash(id) : "—";
}

function historyTable(moves, byID) {
  return table(
    "Alias moves, newest first",
    [
      ["#", (mv) => String(mv.seq)],
      ["Alias", (mv) => badge(mv.alias, "alias")],
      ["Action", (mv) => mv.action || "promote"],
      ["From", (mv) => versionName(byID, mv.from)],
      ["To", (mv) => versionName(byID, mv.to)],
      ["Reason", (mv) => [mv.reason, mv.override ? h("span", { class: "bad-text" }, ` (override: ${mv.override_reason})`) : null]],
      ["Actor", (mv) => mv.actor],
      ["Time", (mv) => time(mv.time)],
    ],
    moves.slice().reverse(),
    { rowHeader: true, class: "history" },
  );
}

function approvalForm(ap, byID, refresh, resultBox) {
  const reason = field("Reason", { name: "reason", required: true, rows: 2, maxlength: 4096 }, { textarea: true });
  const target = byID.get(ap.target);
  return actionForm({
    title: `Approval ${ap.id}: ${ap.alias} → ${target ? modelRef(target) : short(ap.target)}, requested by ${ap.requested_by}: “${ap.reason}”`,
    fields: [reason],
    buttons: [
      ["Approve", "approve"],
      ["Reject", "reject", "secondary"],
    ],
    what: (which) => `${which} approval ${ap.id}`,
    act: (which) => api.post(api.path`/v1/registry/approvals/${ap.id}`, { approve: which === "approve", reason: reason.input.value.trim() }),
    ok: (res) =>
      okBox(
        h("p", { class: "alert-title" }, res.state === "approved" ? "Approved" : "Rejected"),
        h("p", null, `Approval ${res.id} is ${res.state}${res.state === "approved" ? `: ${res.alias} now points at ${target ? modelRef(target) : short(res.target)}` : ""}.`),
      ),
    after: refresh,
    resultBox,
  });
}

function approvalsTable(approvals, byID) {
  return table(
    "Pending approvals",
    [
      ["Approval", (ap) => ap.id],
      ["Alias", (ap) => badge(ap.alias, "alias")],
      ["Target", (ap) => versionName(byID, ap.target)],
      ["Requested by", (ap) => ap.requested_by],
      ["Reason", (ap) => ap.reason],
    ],
    approvals,
    { rowHeader: true },
  );
}
