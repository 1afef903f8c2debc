// Lineage of a run: its inputs (dataset version, recipe version, base,
// and for an incremental run the model it continued and the data it
// replayed) → the run → its adapter → the model versions registered from
// it → the deployments serving them. Laid out by dagre (vendored); every
// node shows its hash and links to its page, and the same nodes are listed
// in a table below the graph.
import dagre from "../../vendor/dagre/dagre.esm.js";
import * as api from "../api.js";
import { h, table, section, link, hash, short, modelRef } from "../dom.js";

const W = 210;
const H = 66;

export async function lineagePage(ctx, runID) {
  const sig = { signal: ctx.signal };
  const [lin, models, deployments] = await Promise.all([
    api.get(api.path`/v1/lineage/${runID}`, sig),
    api.get("/v1/registry/models", sig),
    api.get("/v1/deployments", sig),
  ]);
  const { nodes, edges, engine } = graphOf(lin, models, deployments);
  return {
    title: `Lineage of ${runID}`,
    node: h(
      "div",
      null,
      h("p", { class: "crumbs" }, link("/runs", "Runs"), " / ", link(`/runs/${encodeURIComponent(runID)}`, runID), " / lineage"),
      h("h1", null, `Lineage of run ${runID}`),
      h("p", null, "Inputs on the left, what the run made on the right. Every box links to its page; hashes are content addresses (hover for the whole)."),
      h("div", { class: "lineage-graph" }, svgGraph(nodes, edges)),
      engine ? h("p", null, "Engine: ", h("code", null, engine)) : null,
      section(
        "Nodes",
        table(
          "Lineage nodes, inputs first",
          [
            ["Kind", (n) => n.kind],
            ["Name", (n) => link(n.route, n.name)],
            ["Hash", (n) => hash(n.hash)],
            ["Detail", (n) => n.detail || "—"],
          ],
          nodes,
          { rowHeader: true, class: "lineage-nodes" },
        ),
      ),
    ),
  };
}

// graphOf turns the lineage API's tree and the registry's and deployments'
// lists into nodes (kind, name, hash, route) and edges.
function graphOf(lin, models, deployments) {
  const nodes = [];
  const edges = [];
  const add = (n) => {
    n.key = `${n.kind}:${n.id}`;
    if (!nodes.some((x) => x.key === n.key)) nodes.push(n);
    return n.key;
  };
  const enc = encodeURIComponent;
  const run = `run:${lin.id}`; // added after its inputs, so the list reads left to right
  let engine = "";
  let adapter = null;
  const made = models.filter((m) => m.run_id === lin.id);
  for (const c of lin.children || []) {
    const [name] = (c.name || "").split("@");
    switch (c.kind) {
      case "dataset":
      case "replay":
      case "forgetting":
        edges.push([add({ kind: c.kind === "dataset" ? "dataset" : `${c.kind} dataset`, id: c.id, name: `${c.name}`, hash: c.hash, detail: c.detail, route: `/datasets/${enc(name)}/${enc(c.id)}` }), run]);
        break;
      case "recipe":
        edges.push([add({ kind: "recipe", id: c.id, name: c.name, hash: c.hash, route: `/recipes/${enc(name)}/${enc(c.id)}` }), run]);
        break;
      case "base":
        edges.push([add({ kind: "base", id: c.id, name: c.name, hash: c.hash, detail: c.detail, route: `/bases/${enc(name)}/${enc(c.id)}` }), run]);
        break;
      case "init": {
        const m = models.find((x) => x.id === c.id);
        edges.push([add({ kind: "started from", id: c.id, name: m ? modelRef(m) : c.name, hash: c.id, detail: c.detail, route: m ? `/models/${enc(m.name)}/v${m.version}` : `/lineage/${enc(lin.id)}` }), run]);
        break;
      }
      case "adapter":
        adapter = c;
        break;
      case "engine":
        engine = c.name;
        break;
    }
  }
  add({ kind: "run", id: lin.id, name: lin.id, hash: lin.hash, detail: lin.detail, route: `/runs/${enc(lin.id)}` });
  if (adapter) {
    const a = add({
      kind: "adapter",
      id: adapter.id,
      name: `adapter ${short(adapter.id)}`,
      hash: adapter.hash,
      detail: "the trained delta",
      route: made.length ? `/models/${enc(made[0].name)}/v${made[0].version}` : `/runs/${enc(lin.id)}`,
    });
    edges.push([run, a]);
    for (const m of made) {
      const mk = add({ kind: "model version", id: m.id, name: modelRef(m), hash: m.id, detail: (m.aliases || []).join(", "), route: `/models/${enc(m.name)}/v${m.version}` });
      edges.push([a, mk]);
      for (const d of deployments) {
        const s = d.serving || {};
        const parts = [["primary", s.primary], ["canary", s.canary], ["shadow", s.shadow]].filter(([, ref]) => ref === modelRef(m));
        if (!parts.length) continue;
        const dk = add({ kind: "deployment", id: d.id, name: `${d.model} v${d.version}`, hash: d.id, detail: `${parts.map((p) => p[0]).join(", ")} via ${d.alias}`, route: `/deployments/${enc(d.model)}` });
        edges.push([mk, dk]);
      }
    }
  }
  return { nodes, edges, engine };
}

function svgGraph(nodes, edges) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 20, ranksep: 56, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.key, { width: W, height: H });
  for (const [a, b] of edges) g.setEdge(a, b);
  dagre.layout(g);
  const { width, height } = g.graph();
  const svg = h(
    "svg:svg",
    { viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`, role: "group", "aria-label": "Lineage graph" },
    h(
      "svg:defs",
      null,
      h("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto-start-reverse" }, h("svg:path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#57606a" })),
    ),
  );
  for (const [a, b] of edges) {
    const pts = g.edge(a, b).points;
    svg.append(h("svg:path", { d: "M " + pts.map((p) => `${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" L "), fill: "none", stroke: "#57606a", "stroke-width": "1.5", "marker-end": "url(#arrow)" }));
  }
  for (const n of nodes) {
    const { x, y } = g.node(n.key);
    const left = x - W / 2;
    const top = y - H / 2;
    svg.append(
      h(
        "svg:a",
        { href: "#" + n.route, class: "node", "data-kind": n.kind },
        h("svg:rect", { x: left, y: top, width: W, height: H, rx: 6, class: "node-box" }),
        h("svg:text", { x: left + 10, y: top + 18, class: "node-kind" }, n.kind),
        h("svg:text", { x: left + 10, y: top + 37, class: "node-name" }, clip(n.name, 26)),
        h("svg:text", { x: left + 10, y: top + 55, class: "node-hash" }, short(n.hash)),
      ),
    );
  }
  // Scaled down to the page's width, never up.
  svg.style.maxWidth = `${Math.ceil(width)}px`;
  return svg;
}

function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}
