// Who the dashboard acts as: the answer of GET /v1/whoami for the token
// the reader logged in with (api.js carries it), or for no token at all on
// a server started with --insecure-local (principal "local"). The role it
// names in the request's project decides which actions a page offers; the
// server decides again on every request, and a refusal is shown in place.
import * as api from "./api.js";
import { h } from "./dom.js";

// The roles, each allowed what the one before it is (docs/security.md).
const RANK = { viewer: 1, operator: 2, admin: 3 };

let me = null;

// whoami asks the server who the current credentials act as.
export async function whoami() {
  me = await api.get("/v1/whoami");
  return me;
}

// identity is the last whoami answer: {principal, token, project, roles,
// expires_at}.
export function identity() {
  return me;
}

// projects lists the projects the principal holds a role in, by name,
// each with its role: what the header's project switch offers.
export function projects() {
  if (!me || !me.roles) return [];
  return Object.keys(me.roles)
    .sort()
    .map((name) => ({ name, role: me.roles[name] }));
}

// switchProject makes requests act in project name (X-Tailor-Project)
// and asks whoami there; a refused switch leaves the previous project in
// place and throws.
export async function switchProject(name) {
  const prev = api.currentProject();
  api.setProject(name);
  try {
    await whoami();
  } catch (err) {
    api.setProject(prev);
    throw err;
  }
  return me;
}

// expiresIn is how long the token has left in milliseconds, or null when
// it never expires (or there is no token).
export function expiresIn(now = Date.now()) {
  if (!me || !me.expires_at) return null;
  return Date.parse(me.expires_at) - now;
}

// role is the role in the project requests act in ("" when none).
export function role() {
  return (me && me.roles && me.roles[me.project]) || "";
}

// may says whether the role is at least needed ("operator", "admin").
export function may(needed) {
  return (RANK[role()] || 0) >= RANK[needed];
}

// login checks a token with whoami and keeps it for this tab; a refused
// token (401) leaves the previous credentials in place and throws.
// A new token starts in its own home project.
export async function login(token) {
  const prev = api.currentToken();
  const prevProject = api.currentProject();
  api.setToken(token);
  api.setProject(null);
  try {
    await whoami();
  } catch (err) {
    api.setToken(prev);
    api.setProject(prevProject);
    throw err;
  }
  api.saveToken();
  return me;
}

// logout forgets the token and the project chosen; the next whoami says
// who no token is (local, or a 401 that asks for a log-in).
export function logout() {
  api.setToken(null);
  api.saveToken();
  api.setProject(null);
  me = null;
}

// withoutRole is what a page shows in place of an action the role does
// not allow: the action, the role held and the role needed.
export function withoutRole(what, needed) {
  const held = role();
  return h(
    "p",
    { class: "muted role-note" },
    `To ${what} needs the ${needed} role in project ${me ? me.project : "default"}; you are ${held || "without a role"}${me ? ` (${me.principal})` : ""}.`,
  );
}
