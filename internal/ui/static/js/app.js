// The dashboard's shell: the router (routes are URL fragments, "#/runs/…",
// so any page can be linked to and reloaded without server routes), the
// one live stream of events every page can listen to, and the rendering of
// a page into <main>.
import * as api from "./api.js";
import { h, errorBox } from "./dom.js";
import { overviewPage } from "./pages/overview.js";
import { modelPage } from "./pages/model.js";
import { lineagePage } from "./pages/lineage.js";
import { runsPage, runPage } from "./pages/runs.js";
import { reportPage } from "./pages/report.js";
import { datasetsPage, datasetPage } from "./pages/datasets.js";
import { recipePage, basePage, deploymentPage } from "./pages/inputs.js";
import { monitorsPage, monitorPage } from "./pages/monitors.js";
import { triggersPage, triggerPage } from "./pages/triggers.js";

// Each route: a pattern over the fragment after "#", the page, and the
// navigation entry it belongs to.
const routes = [
  [/^\/$/, overviewPage, "overview"],
  [/^\/models\/([^/]+)\/([^/]+)$/, modelPage, "overview"],
  [/^\/lineage\/([^/]+)$/, lineagePage, "overview"],
  [/^\/runs$/, runsPage, "runs"],
  [/^\/runs\/([^/]+)$/, runPage, "runs"],
  [/^\/reports\/([^/]+)$/, reportPage, "overview"],
  [/^\/datasets$/, datasetsPage, "datasets"],
  [/^\/datasets\/([^/]+)\/([^/]+)$/, datasetPage, "datasets"],
  [/^\/recipes\/([^/]+)\/([^/]+)$/, recipePage, "runs"],
  [/^\/bases\/([^/]+)\/([^/]+)$/, basePage, "datasets"],
  [/^\/deployments\/([^/]+)$/, deploymentPage, "overview"],
  [/^\/monitors$/, monitorsPage, "monitoring"],
  [/^\/monitors\/([^/]+)$/, monitorPage, "monitoring"],
  [/^\/triggers$/, triggersPage, "triggers"],
  [/^\/triggers\/([^/]+)$/, triggerPage, "triggers"],
];

// Live events: one stream for the whole app, resumed after the last seq
// it saw when it drops. recent keeps the newest for the overview.
const recent = [];
const listeners = new Set();
const RECENT = 20;
let lastSeq = 0;

function setLive(text, state) {
  const el = document.getElementById("live");
  el.textContent = text;
  el.dataset.state = state;
}

async function followEvents() {
  let delay = 1000;
  for (;;) {
    try {
      const query = lastSeq ? { follow: true, after: lastSeq } : { follow: true, tail: RECENT };
      setLive("Events: live", "live");
      for await (const ev of api.events({ query })) {
        delay = 1000;
        if (ev.seq <= lastSeq) continue;
        lastSeq = ev.seq;
        recent.push(ev);
        if (recent.length > RECENT) recent.shift();
        for (const fn of listeners) fn(ev);
      }
    } catch {
      // the stream failed (server restarting); retry below
    }
    setLive("Events: reconnecting", "down");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

let current = null; // the shown page's AbortController

async function render() {
  const main = document.getElementById("main");
  const route = location.hash.replace(/^#/, "") || "/";
  if (!route.startsWith("/")) return; // an in-page anchor, not a route
  if (current) current.abort();
  const ctrl = new AbortController();
  current = ctrl;
  const subs = [];
  ctrl.signal.addEventListener("abort", () => subs.forEach((fn) => listeners.delete(fn)));
  const ctx = {
    signal: ctrl.signal,
    recent: () => recent.slice(),
    onEvent(fn) {
      subs.push(fn);
      listeners.add(fn);
    },
    rerender: () => render(),
  };
  let page = null;
  let params = [];
  let nav = "";
  for (const [re, fn, entry] of routes) {
    const m = route.match(re);
    if (m) {
      page = fn;
      params = m.slice(1).map(decodeURIComponent);
      nav = entry;
      break;
    }
  }
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.dataset.state = "loading";
  main.setAttribute("aria-busy", "true");
  let title = "Not found";
  let content;
  try {
    if (!page) throw Object.assign(new Error(`No page at #${route}. Use the navigation above.`), { kind: "not_found" });
    const res = await page(ctx, ...params);
    title = res.title;
    content = res.node;
  } catch (err) {
    if (ctrl.signal.aborted) return;
    content = h("div", null, h("h1", { tabindex: "-1" }, "Could not show this page"), errorBox(err));
    title = "Error";
  }
  if (ctrl.signal.aborted) return;
  main.replaceChildren(content);
  main.removeAttribute("aria-busy");
  main.dataset.state = "ready";
  document.title = `${title} · Tailor`;
  // After a navigation, the new page's heading takes the focus, so that
  // keyboard and screen-reader users start there; not on the first load.
  const h1 = main.querySelector("h1");
  if (h1 && rendered) {
    h1.setAttribute("tabindex", "-1");
    h1.focus({ preventScroll: true });
  }
  rendered = true;
}

let rendered = false;

function start() {
  document.getElementById("skip").addEventListener("click", (e) => {
    e.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("hashchange", render);
  followEvents();
  render();
}

start();
