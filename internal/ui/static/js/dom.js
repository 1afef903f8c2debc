// Small helpers to build the page's DOM. Text always goes in as text
// nodes, never as HTML, so nothing the API returns (a reason, a label, a
// record) can inject markup.

// h creates an element: h("a", {href: "#/"}, "text", child, [more]).
// Attributes: class, on (an object of event listeners), and any other
// attribute; false, null and undefined leave an attribute out.
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "on") {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === "class" && !svg) {
      el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

// fill replaces el's children with children (nodes, text, arrays of them).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// short is the first 12 hex digits of a digest or id ("sha256:" dropped).
export function short(id) {
  if (!id) return "";
  const s = String(id).replace(/^sha256:/, "");
  return /^[0-9a-f]{16,}$/.test(s) ? s.slice(0, 12) : s;
}

// hash shows a digest shortened, with the whole of it in the title and a
// screen-reader text.
export function hash(id) {
  if (!id) return h("span", { class: "muted" }, "—");
  return h("code", { class: "hash", title: id }, short(id));
}

// time is a <time> element showing a timestamp in the reader's locale.
export function time(iso) {
  if (!iso || iso.startsWith("0001-")) return h("span", { class: "muted" }, "—");
  const d = new Date(iso);
  return h("time", { datetime: iso, title: iso }, d.toLocaleString());
}

// num formats a metric: integers as they are, others to 4 significant digits.
export function num(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (Number.isInteger(x)) return x.toLocaleString();
  if (Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-3)) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}

// badge is a short status word; the word itself carries the meaning, the
// colour only repeats it.
export function badge(word, kind) {
  const k = kind || badgeKind(word);
  return h("span", { class: ["badge", "badge-" + k] }, word);
}

function badgeKind(word) {
  switch (word) {
    case "pass":
    case "succeeded":
    case "done":
    case "approved":
      return "good";
    case "fail":
    case "failed":
    case "rejected":
    case "drifted":
      return "bad";
    case "running":
    case "queued":
    case "pending":
      return "busy";
    default:
      return "plain";
  }
}

// table builds a table: columns are [heading, cell(row) → node or text];
// caption names it for screen readers (and is shown). opts.region makes
// its scrolling wrapper a named, focusable region, for a wide table with
// nothing focusable in it that a keyboard could scroll by.
export function table(caption, columns, rows, opts = {}) {
  const head = h("tr", null, columns.map(([title, , cls]) => h("th", { scope: "col", class: cls }, title)));
  const body = rows.length
    ? rows.map((r) => h("tr", null, columns.map(([, cell, cls], i) => (i === 0 && opts.rowHeader ? h("th", { scope: "row", class: cls }, cell(r)) : h("td", { class: cls }, cell(r))))))
    : [h("tr", null, h("td", { colspan: columns.length, class: "muted" }, opts.empty || "None yet."))];
  const wrap = opts.region ? { class: "table-wrap", role: "region", tabindex: "0", "aria-label": caption } : { class: "table-wrap" };
  return h("div", wrap, h("table", { class: opts.class }, h("caption", null, caption), h("thead", null, head), h("tbody", null, body)));
}

// dl builds a description list of [term, value] pairs, skipping empty values.
export function dl(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
  );
}

// section is a titled part of a page.
export function section(title, ...children) {
  const id = "s-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

// link is an in-app link to a route.
export function link(route, ...children) {
  return h("a", { href: "#" + route }, ...children);
}

// errorBox shows an API error (or any error) as an alert: the kind in words
// and the server's message, which says what to do next.
export function errorBox(err, what) {
  const kind = err && err.kind;
  const title =
    kind === "forbidden"
      ? "Refused"
      : kind === "conflict"
        ? "Conflict"
        : kind === "not_found"
          ? "Not found"
          : kind === "invalid"
            ? "Invalid request"
            : kind === "unavailable"
              ? "Unavailable"
              : "Error";
  return h(
    "div",
    { class: "alert alert-bad", role: "alert" },
    h("p", { class: "alert-title" }, what ? `${title}: ${what}` : title, err && err.status ? ` (HTTP ${err.status}, ${kind})` : ""),
    h("p", { class: "alert-message" }, err && err.message ? err.message : String(err)),
  );
}

// okBox shows a completed action.
export function okBox(...children) {
  return h("div", { class: "alert alert-good", role: "status" }, ...children);
}

// modelRef is "name@vN" from a model version.
export function modelRef(m) {
  return `${m.name}@v${m.version}`;
}

// runKind reads a run's kind from its inputs: train, eval or profile.
export function runKind(r) {
  return (r.inputs && r.inputs.kind) || "train";
}

export function isTerminal(state) {
  return state === "succeeded" || state === "failed" || state === "canceled" || state === "budget_exceeded";
}
