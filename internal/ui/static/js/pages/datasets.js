// Datasets: every version, and one version with its splits, its profile
// (label counts, length histogram, top n-grams) and its diff against its
// parent.
import * as api from "../api.js";
import { h, table, section, link, hash, time, dl, num } from "../dom.js";

export async function datasetsPage(ctx) {
  const [versions, bases] = await Promise.all([api.get("/v1/datasets", { signal: ctx.signal }), api.get("/v1/bases", { signal: ctx.signal })]);
  return {
    title: "Datasets",
    node: h(
      "div",
      null,
      h("h1", null, "Datasets and bases"),
      section(
        "Dataset versions",
        table(
          "Dataset versions, newest first",
          [
            ["Version", (v) => link(`/datasets/${encodeURIComponent(v.name)}/${encodeURIComponent(v.id)}`, `${v.name} `, hash(v.id))],
            ["Task", (v) => v.task],
            ["Records", (v) => num(v.records), "num"],
            ["Splits", (v) => splitText(v)],
            ["Parent", (v) => (v.parent ? hash(v.parent) : "—")],
            ["Region", (v) => v.region],
            ["Created", (v) => time(v.created_at)],
          ],
          versions.slice().sort((a, b) => (a.created_at < b.created_at ? 1 : -1)),
          { rowHeader: true },
        ),
      ),
      section(
        "Base models",
        table(
          "Base model versions",
          [
            ["Version", (b) => link(`/bases/${encodeURIComponent(b.name)}/${encodeURIComponent(b.id)}`, `${b.name}@v${b.version}`)],
            ["Architecture", (b) => b.arch],
            ["Parameters", (b) => num(b.params), "num"],
            ["Fingerprint", (b) => hash(b.id)],
            ["Created", (b) => time(b.created_at)],
          ],
          bases,
          { rowHeader: true },
        ),
      ),
    ),
  };
}

function splitText(v) {
  return ["train", "validation", "test"]
    .filter((s) => v.splits && v.splits[s] !== undefined)
    .map((s) => `${s} ${v.splits[s]}`)
    .join(", ");
}

export async function datasetPage(ctx, name, ref) {
  const sig = { signal: ctx.signal };
  const d = await api.get(api.path`/v1/datasets/${name}/versions/${ref}`, sig);
  const v = d.version;
  const m = d.manifest || {};
  const p = m.profile || {};
  let diff = null;
  if (v.parent) {
    try {
      diff = await api.get(api.path`/v1/datasets/${name}/diff`, { ...sig, query: { a: v.parent, b: v.id } });
    } catch {
      diff = null; // the parent may have been collected; the page stands without it
    }
  }
  return {
    title: `Dataset ${name} ${v.id.slice(0, 12)}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/datasets", "Datasets"), " / ", name),
      h("h1", null, `Dataset ${name} `, hash(v.id)),
      dl([
        ["Version id", hash(v.id)],
        ["Task", v.task],
        ["Records", num(v.records)],
        ["Bytes", num(v.bytes)],
        ["Splits", splitText(v)],
        ["Parent", v.parent ? link(`/datasets/${encodeURIComponent(name)}/${encodeURIComponent(v.parent)}`, hash(v.parent)) : null],
        ["Manifest", hash(v.manifest)],
        ["Chunks", `${(v.chunks || []).length}`],
        ["Region", v.region],
        ["Owner", v.owner],
        ["Created", time(v.created_at)],
      ]),
      p.labels ? section("Labels", bars("Records per label", Object.entries(p.labels).sort((a, b) => b[1] - a[1]))) : null,
      p.length ? section("Length (characters)", lengthBars(p.length)) : null,
      p.unigrams ? section("Top words", bars("Most frequent words", p.unigrams.slice(0, 15).map((g) => [g.gram, g.count]))) : null,
      p.bigrams ? section("Top word pairs", bars("Most frequent word pairs", p.bigrams.slice(0, 15).map((g) => [g.gram, g.count]))) : null,
      diff ? section("Changes from its parent", h("pre", { class: "json", tabindex: "0" }, JSON.stringify(diff, null, 2))) : null,
    ),
  };
}

// bars is a table with a bar per row; the number is always written out.
function bars(caption, rows) {
  const max = Math.max(1, ...rows.map((r) => r[1]));
  return table(
    caption,
    [
      ["Value", (r) => r[0]],
      ["Count", (r) => num(r[1]), "num"],
      [
        "Share of the largest",
        (r) => {
          const bar = h("span", { class: "bar", "aria-hidden": "true" });
          bar.style.width = `${((100 * r[1]) / max).toFixed(1)}%`;
          return h("span", { class: "bar-track" }, bar);
        },
        "bar-cell",
      ],
    ],
    rows,
    { rowHeader: true, class: "bars" },
  );
}

function lengthBars(l) {
  const edges = l.edges || [];
  const rows = (l.counts || []).map((c, i) => [i === 0 ? `< ${edges[0]}` : i < edges.length ? `${edges[i - 1]}–${edges[i] - 1}` : `≥ ${edges[edges.length - 1]}`, c]);
  return h("div", null, h("p", null, `Mean ${num(l.mean)}, standard deviation ${num(l.std)}, from ${num(l.min)} to ${num(l.max)}.`), bars("Records per length bucket", rows));
}
