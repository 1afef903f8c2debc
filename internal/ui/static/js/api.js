// Every request the dashboard makes goes through this module: the JSON API
// under /v1 of the server that served the page, nothing else. It adds the
// credentials and the project to every request.

// credentials: the bearer token from the log-in form (session.js), the
// one place a request's credentials are added, to every request the event
// stream included. It is kept in this tab's sessionStorage only (gone when
// the tab closes, never in localStorage, a cookie or a URL) and never
// written to the console.
const TOKEN_KEY = "tailor.token";
let token = stored();

function stored() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

// setToken sets the token the next requests carry (null: none), in memory
// only; saveToken keeps the current one for this tab's reloads.
export function setToken(t) {
  token = t || null;
}

export function saveToken() {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token holds until the page reloads
  }
}

// currentToken is the token requests carry now, for a log-in that must
// put it back when the new one is refused.
export function currentToken() {
  return token;
}

// project: the project the reader chose to act in (session.js), sent as
// X-Tailor-Project with every request; null acts in the token's home
// project. Kept in this tab's sessionStorage beside the token, so a
// reload acts where the reader was.
const PROJECT_KEY = "tailor.project";
let project = storedProject();

function storedProject() {
  try {
    return sessionStorage.getItem(PROJECT_KEY) || null;
  } catch {
    return null;
  }
}

// setProject sets the project the next requests act in (null: the
// token's) and keeps it for this tab's reloads.
export function setProject(p) {
  project = p || null;
  try {
    if (project) sessionStorage.setItem(PROJECT_KEY, project);
    else sessionStorage.removeItem(PROJECT_KEY);
  } catch {
    // storage disabled: the choice holds until the page reloads
  }
}

// currentProject is the project chosen, or null for the token's own.
export function currentProject() {
  return project;
}

function headers(extra) {
  const h = new Headers(extra);
  if (token) h.set("Authorization", "Bearer " + token);
  if (project) h.set("X-Tailor-Project", project);
  return h;
}

// APIError is a non-2xx answer: the API's {"error": {kind, message}} with
// its HTTP status. A refusal (failed gates, approval needed, residency) is
// a 403 "forbidden"; a moved alias a 409 "conflict".
export class APIError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.name = "APIError";
    this.status = status;
    this.kind = kind;
  }
}

// path builds an API path from a template, encoding every value:
// path`/v1/runs/${id}` → "/v1/runs/run-1".
export function path(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => {
    out += encodeURIComponent(String(v)) + strings[i + 1];
  });
  return out;
}

async function send(method, p, { body, query, signal } = {}) {
  let url = p;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    if (s) url += "?" + s;
  }
  const init = { method, headers: headers({ Accept: "application/json" }), signal };
  if (body !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  if (!resp.ok) {
    let kind = "internal";
    let message = `${method} ${p}: HTTP ${resp.status}`;
    try {
      const e = (await resp.json()).error;
      if (e) {
        kind = e.kind || kind;
        message = e.message || message;
      }
    } catch {
      // not a JSON error body: keep the status line
    }
    throw new APIError(resp.status, kind, message);
  }
  return resp;
}

// get returns the decoded JSON answer of a GET.
export async function get(p, opts) {
  return (await send("GET", p, opts)).json();
}

// post sends body as JSON and returns the decoded answer.
export async function post(p, body, opts = {}) {
  return (await send("POST", p, { ...opts, body })).json();
}

// lines yields each line of a streamed answer (NDJSON run logs) as it
// arrives, decoded.
export async function* lines(p, opts) {
  const resp = await send("GET", p, opts);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) yield JSON.parse(line);
    }
  }
  if (buf.trim()) yield JSON.parse(buf);
}

// events yields the data of each server-sent event of /v1/events. It reads
// the stream with fetch rather than EventSource, so that the request gets
// the same headers (credentials) as every other.
export async function* events(opts) {
  const resp = await send("GET", "/v1/events", opts);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}
