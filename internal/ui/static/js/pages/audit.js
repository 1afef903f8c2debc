// Audit: the verify status of the hash-chained log (GET /v1/audit/verify,
// any role), then its entries newest first, a page at a time (GET
// /v1/audit?order=newest&before=N, admins), with the number of the
// project's entries (seqs are server-wide, so a project's have gaps).
// #/audit shows the newest page (or, on a broken chain, the page around
// the first broken entry); #/audit/N the page ending at entry N.
import * as api from "../api.js";
import { h, table, section, link, time, dl, num, short } from "../dom.js";
import { may, withoutRole } from "../session.js";

const PAGE = 50;

export async function auditPage(ctx, upTo) {
  const sig = { signal: ctx.signal };
  const v = await api.get("/v1/audit/verify", sig);
  let page = null;
  let newer = 0; // the seq ending the next newer page, 0: none
  if (may("admin")) {
    // On a broken chain, the first page shown holds the broken entry
    // near its top.
    const end = upTo ? Number(upTo) : v.ok || !v.broken ? 0 : v.broken.seq + PAGE / 2;
    page = await api.get("/v1/audit", { ...sig, query: { order: "newest", before: end ? end + 1 : undefined, limit: PAGE } });
    const top = page.entries && page.entries.length ? page.entries[0].seq : end;
    if (end && top) {
      // The page not ending at the newest entry: the entries after it,
      // oldest first, end the newer page.
      const after = await api.get("/v1/audit", { ...sig, query: { after: top, limit: PAGE } });
      const es = after.entries || [];
      newer = es.length ? es[es.length - 1].seq : 0;
    }
  }
  const brokenSeq = v.broken ? v.broken.seq : 0;
  const entries = page ? page.entries || [] : null;
  const newest = entries && entries.length ? entries[0].seq : 0;
  const oldest = entries && entries.length ? entries[entries.length - 1].seq : 0;
  return {
    title: "Audit log",
    node: h(
      "div",
      null,
      h("h1", null, "Audit log"),
      verifyBox(v),
      section(
        "Entries",
        entries
          ? [
              h(
                "nav",
                { class: "pager", "aria-label": "Audit pages" },
                h("span", { class: "page-range" }, entries.length ? `Entries ${num(oldest)}–${num(newest)}; ${num(page.total)} in this project` : `No entries here; ${num(page.total)} in this project`),
                newer ? link(`/audit/${newer}`, "Newer entries") : null,
                upTo ? link("/audit", "Newest") : null,
                page.next > 0 ? link(`/audit/${page.next - 1}`, "Older entries") : null,
              ),
              entriesTable(entries, brokenSeq),
            ]
          : withoutRole("read the audit log's entries", "admin"),
      ),
    ),
  };
}

// verifyBox is the chain's status: its head when it holds, the first
// broken entry and the check it failed when it does not.
function verifyBox(v) {
  if (v.ok) {
    return h(
      "div",
      { class: "alert alert-good verify", role: "status" },
      h("p", { class: "alert-title" }, "Verified: the chain holds"),
      h("p", null, `${num(v.entries)} entries checked. Head `, h("code", { class: "head" }, `${v.head_seq}:${v.head_hash}`), " — keep it outside the server and check it later with ", h("code", null, "tailor audit verify --head SEQ:HASH"), "."),
    );
  }
  const b = v.broken || {};
  return h(
    "div",
    { class: "alert alert-bad verify", role: "alert" },
    h("p", { class: "alert-title" }, `Broken at entry ${b.seq}: ${b.check}`),
    dl([
      ["Entries that chain", `${num(v.entries)}, up to entry ${v.head_seq}`],
      ["Check failed", b.check],
      ["Expected", b.want ? h("code", null, b.want) : null],
      ["Found", b.got ? h("code", null, b.got) : null],
    ]),
    h("p", null, "See docs/security.md (Audit log) for what each check means."),
  );
}

// object names an entry's object (a digest shortened, whole in its
// title) and links it to its page where there is one.
function object(e) {
  const text = `${e.object_kind} ${short(e.object_id)}`;
  // Runs are named by id; triggers and monitors by name, but their
  // versions' entries by digest, which has no page of its own.
  const named = !/^(sha256:)?[0-9a-f]{16,}$/.test(e.object_id);
  const route = named && { run: "/runs/", trigger: "/triggers/", monitor: "/monitors/" }[e.object_kind];
  const attrs = { class: "object", title: e.object_id };
  return route ? h("a", { ...attrs, href: "#" + route + encodeURIComponent(e.object_id) }, text) : h("span", attrs, text);
}

function entriesTable(entries, brokenSeq) {
  const t = table(
    "Audit entries, newest first",
    [
      ["Seq", (e) => String(e.seq), "num"],
      ["Time", (e) => time(e.time)],
      ["Actor", (e) => e.actor],
      ["Project", (e) => e.project],
      ["Action", (e) => h("code", null, e.action)],
      ["Object", (e) => object(e)],
      ["Hash", (e) => h("code", { class: "hash", title: e.hash }, e.hash.slice(0, 12))],
    ],
    entries,
    { rowHeader: true, class: "audit", empty: "No entries on this page." },
  );
  if (brokenSeq) {
    for (const tr of t.querySelectorAll("tbody tr")) {
      if (tr.firstChild && tr.firstChild.textContent === String(brokenSeq)) {
        tr.classList.add("broken");
        tr.firstChild.append(" (broken)");
      }
    }
  }
  return t;
}
