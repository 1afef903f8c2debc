// The dashboard's shell: who the reader is (session.js: a log-in with a
// token, or none under --insecure-local), the router (routes are URL
// fragments, "#/runs/…", so any page can be linked to and reloaded without
// server routes), the one live stream of events every page can listen to,
// and the rendering of a page into <main>.
import * as api from "./api.js";
import * as session from "./session.js";
import { h, fill, errorBox } from "./dom.js";
import { loginPage } from "./pages/login.js";
import { auditPage } from "./pages/audit.js";
import { usagePage } from "./pages/usage.js";
import { overviewPage } from "./pages/overview.js";
import { modelPage } from "./pages/model.js";
import { lineagePage } from "./pages/lineage.js";
import { runsPage, runPage } from "./pages/runs.js";
import { reportPage } from "./pages/report.js";
import { datasetsPage, datasetPage } from "./pages/datasets.js";
import { recipePage, basePage, deploymentPage } from "./pages/inputs.js";
import { monitorsPage, monitorPage } from "./pages/monitors.js";
import { triggersPage, triggerPage } from "./pages/triggers.js";
import { tokensPage } from "./pages/tokens.js";

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
  [/^\/audit$/, auditPage, "audit"],
  [/^\/audit\/(\d+)$/, auditPage, "audit"],
  [/^\/usage$/, usagePage, "usage"],
  [/^\/login$/, loginPage, ""],
  [/^\/tokens$/, tokensPage, "tokens"],
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

// stream aborts the open stream when the credentials change (log-in, log
// out), so that the next one carries the new token.
let stream = null;
let following = false;

async function followEvents() {
  if (following) return;
  following = true;
  let delay = 1000;
  for (;;) {
    stream = new AbortController();
    try {
      const query = lastSeq ? { follow: true, after: lastSeq } : { follow: true, tail: RECENT };
      setLive("Events: live", "live");
      for await (const ev of api.events({ query, signal: stream.signal })) {
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
    if (stream.signal.aborted) {
      // new credentials: reconnect now with them, or stop without any
      if (session.identity()) continue;
      following = false;
      setLive("Events: off", "down");
      return;
    }
    setLive("Events: reconnecting", "down");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

let current = null; // the shown page's AbortController
let lastRoute = "#/"; // the page a log-in returns to

async function render() {
  const main = document.getElementById("main");
  const route = location.hash.replace(/^#/, "") || "/";
  if (!route.startsWith("/")) return; // an in-page anchor, not a route
  if (route !== "/login") lastRoute = "#" + route;
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
    // signedIn is called by the log-in page and the log-out button: the
    // header, the event stream and the page follow the new identity.
    signedIn: () => identityChanged(),
  };
  let page = null;
  let params = [];
  let nav = "";
  // Without an identity (no token, and the server wants one) every route
  // shows the log-in form; after the log-in it shows its page.
  if (!session.identity()) page = loginPage;
  else for (const [re, fn, entry] of routes) {
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

// showIdentity writes who the page acts as into the header: the
// principal, the project and the role, a switch to the other projects
// the principal holds a role in, a warning when the token expires soon,
// and log-out (or log-in, when no token is in use). The Tokens link is
// there for admins of the project only.
function showIdentity() {
  const who = document.getElementById("who");
  const me = session.identity();
  document.getElementById("nav-tokens").hidden = !session.may("admin");
  if (!me) {
    fill(who, h("span", null, "Not signed in"));
    return;
  }
  const logout = h("button", { type: "button", class: "link-button", id: "logout" }, "Log out");
  logout.addEventListener("click", () => {
    session.logout();
    identityChanged();
  });
  fill(
    who,
    h("span", { class: "who-name" }, me.principal),
    " · project ",
    h("span", { class: "who-project" }, me.project),
    " · ",
    h("span", { class: "who-role" }, session.role() || "no role"),
    projectSwitch(me),
    expiryWarning(me),
    me.token ? [" · ", logout] : [" (no token: --insecure-local) · ", h("a", { href: "#/login", id: "login" }, "Log in")],
  );
}

// projectSwitch lets a principal with roles in several projects choose
// the one every request acts in; the page is drawn again there, with the
// actions the role in that project allows.
function projectSwitch(me) {
  const all = session.projects();
  if (all.length < 2) return null;
  const select = h(
    "select",
    { id: "project-switch", name: "project" },
    all.map((p) => h("option", { value: p.name, selected: p.name === me.project }, `${p.name} (${p.role})`)),
  );
  const form = h(
    "form",
    { class: "project-switch", "aria-label": "Switch project" },
    h("label", { for: "project-switch" }, "Act in"),
    select,
    h("button", { type: "submit", class: "link-button" }, "Switch"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (select.value === me.project) return;
    try {
      await session.switchProject(select.value);
    } catch (err) {
      document.getElementById("who").append(h("span", { role: "alert" }, ` Could not switch to project ${select.value}: ${err.message}`));
      return;
    }
    // The events of the last project are not this one's.
    recent.length = 0;
    lastSeq = 0;
    identityChanged();
  });
  return [" · ", form];
}

// A token that expires within WARN_EXPIRY gets a warning in the header.
const WARN_EXPIRY = 7 * 24 * 3600 * 1000;

function expiryWarning(me) {
  const left = session.expiresIn();
  if (left === null || left > WARN_EXPIRY) return null;
  const hours = Math.max(0, Math.floor(left / 3600000));
  const when = hours < 48 ? `${hours} hour${hours === 1 ? "" : "s"}` : `${Math.floor(hours / 24)} days`;
  return [" · ", h("span", { class: "who-expiry", title: me.expires_at }, `Token expires in ${when}: ask an admin for a new one`)];
}

// identityChanged asks the server who the credentials act as now, then
// redraws the header, reconnects the event stream and shows the page (or
// the log-in form when the server wants a token).
async function identityChanged() {
  let note = null;
  try {
    await session.whoami();
  } catch (err) {
    if (err.status === 401 && api.currentToken()) {
      // The kept token expired or was revoked: forget it, and say so.
      session.logout();
      note = "Your token was refused (" + err.message + "): log in again.";
      try {
        await session.whoami(); // --insecure-local: "local" without a token
      } catch {
        // the server wants a token: the log-in form follows
      }
    } else if (err.status === 403 && api.currentProject()) {
      // The project kept from before holds no role for this token any
      // more: act in the token's own.
      note = `You hold no role in project ${api.currentProject()} any more: acting in your own project.`;
      api.setProject(null);
      try {
        await session.whoami();
      } catch (err2) {
        note = "Could not ask who you are: " + err2.message;
      }
    } else if (err.status !== 401) {
      note = "Could not ask who you are: " + err.message;
    }
  }
  showIdentity();
  if (note) document.getElementById("who").append(h("span", { role: "alert" }, " " + note));
  if (stream) stream.abort();
  if (session.identity()) followEvents();
  if (session.identity() && location.hash === "#/login") location.hash = lastRoute;
  else render();
}

function start() {
  document.getElementById("skip").addEventListener("click", (e) => {
    e.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("hashchange", render);
  identityChanged();
}

start();
