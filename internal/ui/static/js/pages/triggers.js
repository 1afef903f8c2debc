// Triggers: every rule with its counts, and one trigger's spec and the
// history of its firings with each action's outcome.
import * as api from "../api.js";
import { h, table, section, link, badge, hash, time, dl, num } from "../dom.js";

export async function triggersPage(ctx) {
  const ts = await api.get("/v1/triggers", { signal: ctx.signal });
  return {
    title: "Triggers",
    node: h(
      "div",
      null,
      h("h1", null, "Triggers"),
      table(
        "Triggers",
        [
          ["Trigger", (t) => link(`/triggers/${encodeURIComponent(t.spec.name)}`, t.spec.name)],
          ["On", (t) => t.event],
          ["Version", (t) => `v${t.spec.version}`],
          ["Firings", (t) => num(t.firings), "num"],
          ["Running", (t) => num(t.running), "num"],
          ["Skipped", (t) => num(t.skipped), "num"],
          ["Failed", (t) => num(t.failed), "num"],
          ["Last firing", (t) => (t.last ? [badge(t.last.state), " ", time(t.last.updated_at)] : "—")],
        ],
        ts,
        { rowHeader: true, empty: "No triggers: `tailor trigger apply FILE` adds one (docs/triggers.md)." },
      ),
    ),
  };
}

export async function triggerPage(ctx, name) {
  const sig = { signal: ctx.signal };
  const [t, history] = await Promise.all([api.get(api.path`/v1/triggers/${name}`, sig), api.get(api.path`/v1/triggers/${name}/history`, sig)]);
  let spec = t.spec.normalized;
  let parsed = null;
  try {
    parsed = JSON.parse(spec);
    spec = JSON.stringify(parsed, null, 2);
  } catch {
    // shown as it is
  }
  return {
    title: `Trigger ${name}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/triggers", "Triggers"), " / ", name),
      h("h1", null, `Trigger ${name}`),
      dl([
        ["Description", parsed && parsed.description],
        ["On", t.event],
        ["Spec", [`v${t.spec.version} `, hash(t.spec.id)]],
        ["Firings", `${num(t.firings)} (${num(t.running)} running, ${num(t.skipped)} skipped, ${num(t.failed)} failed)`],
      ]),
      section("Spec", h("pre", { class: "json", tabindex: "0" }, spec)),
      section(
        "History",
        table(
          "Firings, newest first",
          [
            ["Event", (f) => `#${f.event_seq} ${f.event_type}`],
            ["State", (f) => badge(f.state)],
            ["Actions", (f) => results(f)],
            ["Started", (f) => time(f.created_at)],
            ["Updated", (f) => time(f.updated_at)],
          ],
          history.slice().reverse(),
          { rowHeader: true, empty: "It has not fired yet." },
        ),
      ),
    ),
  };
}

function results(f) {
  const items = (f.results || []).map((r) =>
    h(
      "li",
      null,
      r.error ? h("span", { class: "bad-text" }, `${r.action}: error: ${r.error}`) : `${r.action}: ${r.outcome}`,
      r.run_id ? [" (", link(`/runs/${encodeURIComponent(r.run_id)}`, r.run_id), ")"] : null,
      r.model && r.version ? [" → ", link(`/models/${encodeURIComponent(r.model)}/v${r.version}`, `${r.model}@v${r.version}`)] : null,
    ),
  );
  if (f.reason) items.push(h("li", null, f.reason));
  if (f.error) items.push(h("li", { class: "bad-text" }, f.error));
  return items.length ? h("ul", { class: "plain" }, items) : "—";
}
