// The things lineage links to that have no page of their own elsewhere: a
// recipe version, a base model version and a deployment.
import * as api from "../api.js";
import { h, table, section, link, hash, time, dl, num, badge } from "../dom.js";

export async function recipePage(ctx, name, ref) {
  const r = await api.get(api.path`/v1/recipes/${name}/versions/${ref}`, { signal: ctx.signal });
  let text = r.normalized;
  try {
    text = JSON.stringify(JSON.parse(r.normalized), null, 2);
  } catch {
    // already text (YAML): shown as it is
  }
  return {
    title: `Recipe ${name}@v${r.version}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/runs", "Runs"), " / recipe ", name),
      h("h1", null, `Recipe ${name}@v${r.version}`),
      dl([
        ["Version id", hash(r.id)],
        ["Created", time(r.created_at)],
      ]),
      section("Normalized recipe", h("pre", { class: "json", tabindex: "0" }, text)),
    ),
  };
}

export async function basePage(ctx, name, ref) {
  const b = await api.get(api.path`/v1/bases/${name}/versions/${ref}`, { signal: ctx.signal });
  return {
    title: `Base ${name}@v${b.version}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/datasets", "Datasets and bases"), " / base ", name),
      h("h1", null, `Base ${name}@v${b.version}`),
      dl([
        ["Fingerprint", hash(b.id)],
        ["Architecture", b.arch],
        ["Parameters", num(b.params)],
        ["Region", b.region],
        ["Manifest", hash(b.manifest)],
        ["Imported", time(b.created_at)],
      ]),
      section(
        "Files",
        table("Files of the base", [["File", (f) => f.name], ["Bytes", (f) => num(f.size), "num"], ["Digest", (f) => hash(f.digest)]], b.files || [], { rowHeader: true }),
      ),
    ),
  };
}

export async function deploymentPage(ctx, name) {
  const sig = { signal: ctx.signal };
  const [d, history] = await Promise.all([api.get(api.path`/v1/deployments/${name}`, sig), api.get(api.path`/v1/deployments/${name}/history`, sig)]);
  const s = d.serving || {};
  const modelLink = (ref) => {
    if (!ref) return null;
    const [n, v] = ref.split("@");
    return link(`/models/${encodeURIComponent(n)}/${encodeURIComponent(v)}`, ref);
  };
  return {
    title: `Deployment ${name}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/", "Overview"), " / deployment ", name),
      h("h1", null, `Deployment ${name} v${d.version}`),
      dl([
        ["Id", hash(d.id)],
        ["Alias", badge(d.alias, "alias")],
        ["Serving", modelLink(s.primary)],
        ["Canary", d.canary ? [`${d.canary.percent} % → `, modelLink(s.canary) || d.canary.model] : null],
        ["Shadow", d.shadow ? modelLink(s.shadow) || d.shadow : null],
        ["Problems", (s.problems || []).length ? h("span", { class: "bad-text" }, s.problems.join("; ")) : null],
        ["Last change", `${d.action} by ${d.actor}${d.reason ? `: “${d.reason}”` : ""}`],
        ["Since", time(d.created_at)],
      ]),
      section(
        "History",
        table(
          "Deployment versions, newest first",
          [
            ["Version", (x) => `v${x.version}`],
            ["Action", (x) => x.action],
            ["Alias", (x) => x.alias],
            ["Canary", (x) => (x.canary ? `${x.canary.model} (${x.canary.percent} %)` : "—")],
            ["Shadow", (x) => x.shadow || "—"],
            ["Reason", (x) => x.reason || "—"],
            ["Actor", (x) => x.actor],
            ["Time", (x) => time(x.created_at)],
          ],
          history.slice().reverse(),
          { rowHeader: true },
        ),
      ),
    ),
  };
}
