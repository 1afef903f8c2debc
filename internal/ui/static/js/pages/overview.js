// Overview: every model with its versions, aliases and verdicts; the
// deployments; the latest events, live.
import * as api from "../api.js";
import { h, fill, table, section, link, badge, time, modelRef, short } from "../dom.js";

export async function overviewPage(ctx) {
  const [models, deployments] = await Promise.all([
    api.get("/v1/registry/models", { signal: ctx.signal }),
    api.get("/v1/deployments", { signal: ctx.signal }),
  ]);
  const modelsBox = h("div", null, modelsSection(models));
  const deploymentsBox = h("div", null, deploymentsTable(deployments));
  const list = h("ol", { class: "events", reversed: true });
  const log = h("div", { role: "log", "aria-label": "Latest events", class: "events-box", tabindex: "0" }, list);
  for (const ev of ctx.recent().reverse()) list.append(eventItem(ev));
  if (!list.children.length) list.append(h("li", { class: "muted" }, "No events yet."));

  // Lists change with the events that change them; a burst is read once.
  let pending = null;
  const refresh = () => {
    pending = pending || setTimeout(async () => {
      pending = null;
      try {
        const [m, d] = await Promise.all([
          api.get("/v1/registry/models", { signal: ctx.signal }),
          api.get("/v1/deployments", { signal: ctx.signal }),
        ]);
        fill(modelsBox, modelsSection(m));
        fill(deploymentsBox, deploymentsTable(d));
      } catch {
        // the page was left, or the server is restarting: the next event retries
      }
    }, 300);
  };
  ctx.onEvent((ev) => {
    if (list.firstElementChild && list.firstElementChild.classList.contains("muted")) fill(list);
    list.prepend(eventItem(ev));
    while (list.children.length > 20) list.lastElementChild.remove();
    if (/^(model|deployment)\./.test(ev.type)) refresh();
  });

  return {
    title: "Overview",
    node: h(
      "div",
      null,
      h("h1", null, "Overview"),
      section("Models", modelsBox),
      section("Deployments", deploymentsBox),
      section("Latest events", h("p", { class: "muted" }, "Newest first; new events appear as they are committed."), log),
    ),
  };
}

function modelsSection(models) {
  if (!models.length) return h("p", { class: "muted" }, "No model versions yet: a succeeded run registers one.");
  const byName = new Map();
  for (const m of models) {
    if (!byName.has(m.name)) byName.set(m.name, []);
    byName.get(m.name).push(m);
  }
  return [...byName.entries()].map(([name, versions]) =>
    table(
      `Model ${name}`,
      [
        ["Version", (m) => link(`/models/${encodeURIComponent(m.name)}/v${m.version}`, modelRef(m))],
        ["Aliases", (m) => (m.aliases || []).map((a) => badge(a, "alias"))],
        ["Verdict", (m) => (m.verdict ? badge(m.verdict) : h("span", { class: "muted" }, "no report"))],
        ["Failed gates", (m) => failed(m)],
        ["Run", (m) => (m.run_id ? link(`/runs/${encodeURIComponent(m.run_id)}`, m.run_id) : "—")],
        ["Created", (m) => time(m.created_at)],
      ],
      versions.slice().sort((a, b) => b.version - a.version),
      { rowHeader: true, class: "models" },
    ),
  );
}

function failed(m) {
  const last = (m.reports || [])[m.reports.length - 1];
  return last && last.failed && last.failed.length ? last.failed.join(", ") : "—";
}

function deploymentsTable(ds) {
  return table(
    "Deployments",
    [
      ["Model", (d) => link(`/deployments/${encodeURIComponent(d.model)}`, d.model)],
      ["Alias", (d) => badge(d.alias, "alias")],
      ["Serving", (d) => servingText(d)],
      ["Canary", (d) => (d.canary ? `${d.canary.model} (${d.canary.percent} %)` : "—")],
      ["Shadow", (d) => d.shadow || "—"],
      ["Version", (d) => `v${d.version} (${d.action})`],
      ["Reason", (d) => d.reason || "—"],
    ],
    ds,
    { rowHeader: true, empty: "No deployments: `tailor deploy NAME --alias champion` serves one." },
  );
}

function servingText(d) {
  const s = d.serving || {};
  const parts = [];
  if (s.primary) {
    const [name, ver] = s.primary.split("@");
    parts.push(link(`/models/${encodeURIComponent(name)}/${encodeURIComponent(ver)}`, s.primary));
  }
  for (const p of s.problems || []) parts.push(h("span", { class: "bad-text" }, " " + p));
  return parts.length ? parts : "—";
}

// eventItem is one event in words: its type, what it is about, and when.
export function eventItem(ev) {
  const d = ev.data || {};
  let what = short(ev.subject);
  switch (ev.type) {
    case "run.state.changed":
      what = `${ev.subject}: ${d.from || "new"} → ${d.to}`;
      break;
    case "model.alias.moved":
      what = `${d.name || ""} ${d.alias || ""} → ${short(d.to)}${d.reason ? ` (“${d.reason}”)` : ""}`;
      break;
    case "model.version.registered":
    case "dataset.version.created":
    case "base.version.created":
    case "recipe.version.created":
      what = `${d.name || ""} ${short(d.id || ev.subject)}`;
      break;
  }
  return h(
    "li",
    null,
    h("span", { class: "event-seq" }, `#${ev.seq}`),
    " ",
    h("span", { class: "event-type" }, ev.type),
    " ",
    h("span", null, what),
    " ",
    h("span", { class: "muted" }, time(ev.time)),
  );
}

