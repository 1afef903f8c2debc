// Audit: the verify status of the hash-chained log (GET /v1/audit/verify,
// any role), then its entries newest first, a page at a time (GET
// /v1/audit, admins). The API pages oldest first after a seq; since seqs
// run 1, 2, 3… without gaps on a sound chain, the page of the PAGE
// entries up to seq N is the API's page after N − PAGE, reversed.
// #/audit shows the newest page (up to the verified head, or around the
// first broken entry); #/audit/N the page ending at entry N.
import * as api from "../api.js";
import { h, table, section, link, time, dl, num, short } from "../dom.js";
import { may, withoutRole } from "../session.js";

const PAGE = 50;

export async function auditPage(ctx, upTo) {
  const sig = { signal: ctx.signal };
  const v = await api.get("/v1/audit/verify", sig);
  let entries = null;
  let end = 0;
  let more = false;
  if (may("admin")) {
    // The newest page ends at the verified head; on a broken chain, the
    // first page shown holds the broken entry near its top.
    end = upTo ? Number(upTo) : v.ok || !v.broken ? v.head_seq : v.broken.seq + PAGE / 2;
    const after = Math.max(0, end - PAGE);
    // One entry more than the page says whether newer entries exist.
    const page = await api.get("/v1/audit", { ...sig, query: { after, limit: end - after + 1 } });
    const got = page.entries || [];
    more = got.length > end - after || (got.length && got[got.length - 1].seq > end);
    entries = got.filter((e) => e.seq <= end).reverse();
  }
  const brokenSeq = v.broken ? v.broken.seq : 0;
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
                more ? link(`/audit/${end + PAGE}`, "Newer entries") : null,
                upTo ? link("/audit", "Newest") : null,
                oldest > 1 ? link(`/audit/${oldest - 1}`, "Older entries") : null,
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
