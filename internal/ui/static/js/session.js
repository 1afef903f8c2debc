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

// identity is the last whoami answer: {principal, token, project, roles}.
export function identity() {
  return me;
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
export async function login(token) {
  const prev = api.currentToken();
  api.setToken(token);
  try {
    await whoami();
  } catch (err) {
    api.setToken(prev);
    throw err;
  }
  api.saveToken();
  return me;
}

// logout forgets the token; the next whoami says who no token is (local,
// or a 401 that asks for a log-in).
export function logout() {
  api.setToken(null);
  api.saveToken();
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
