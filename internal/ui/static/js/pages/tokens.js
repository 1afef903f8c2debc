// Tokens (admins of the project the page acts in): the tokens with a role
// in the project, never their secrets (GET /v1/tokens); a form to create
// one (POST /v1/tokens), whose secret is shown once, here, with a copy
// button; and a form to revoke one with a reason (POST
// /v1/tokens/{id}/revoke). Another role gets a refusal that says which
// role it needs, and the page asks the server nothing.
import * as api from "../api.js";
import { h, fill, table, section, time, badge, okBox } from "../dom.js";
import { field, selectField, actionForm } from "../forms.js";
import * as session from "../session.js";

const ROLES = [
  ["viewer", "viewer: reads"],
  ["operator", "operator: also imports, runs, cancels, deploys"],
  ["admin", "admin: also promotes, approves, rolls back, manages tokens"],
];

const EXPIRIES = [
  ["24h", "1 day"],
  ["168h", "7 days"],
  ["720h", "30 days"],
  ["2160h", "90 days"],
  ["", "never (until revoked)"],
];

export async function tokensPage(ctx) {
  const me = session.identity();
  const project = me ? me.project : "default";
  if (!session.may("admin")) {
    return {
      title: "Tokens",
      node: h(
        "div",
        null,
        h("h1", null, "Tokens"),
        h(
          "div",
          { class: "alert alert-bad refusal", role: "alert" },
          h("p", { class: "alert-title" }, "Refused: tokens are for admins"),
          h(
            "p",
            null,
            `Listing, creating and revoking tokens needs the admin role in project ${project}; you are ${session.role() || "without a role"} there${me ? ` (${me.principal})` : ""}. Ask an admin of ${project}, or switch to a project where you are admin.`,
          ),
        ),
      ),
    };
  }
  const sig = { signal: ctx.signal };
  const listBox = h("div", null);
  // The revoke form is rebuilt with the list of live tokens; its answer
  // stays below it.
  const revokeBox = h("div", null);
  const revokeResult = h("div", { class: "form-result", "aria-live": "polite" });
  const refresh = async () => {
    const tokens = await api.get("/v1/tokens", sig);
    fill(listBox, tokensTable(tokens, project, me));
    fill(revokeBox, revokeForm(tokens, refresh, me, ctx, revokeResult));
  };
  await refresh();
  return {
    title: "Tokens",
    node: h(
      "div",
      null,
      h("h1", null, "Tokens"),
      h(
        "p",
        null,
        `The tokens with a role in project ${project}. A token is shown by its id (tlr_…) only: the server keeps no secret, so a secret is shown once, when it is created.`,
      ),
      section(`Tokens in project ${project}`, listBox),
      section("Create or revoke", h("div", { class: "actions" }, createForm(refresh, project), h("div", null, revokeBox, revokeResult))),
    ),
  };
}

function tokensTable(tokens, project, me) {
  return table(
    `Tokens with a role in project ${project}, oldest first`,
    [
      ["Id", (t) => h("code", { class: "token-id" }, t.id), ""],
      ["Principal", (t) => [t.principal, me && t.id === me.token ? h("span", { class: "muted" }, " (you)") : null]],
      ["Role here", (t) => t.roles[project] || "—"],
      ["Home project", (t) => t.project],
      ["Other roles", (t) => otherRoles(t, project)],
      ["Expires", (t) => (t.expires_at ? time(t.expires_at) : h("span", { class: "muted" }, "never"))],
      ["State", (t) => badge(t.state, t.state === "live" ? "good" : t.state === "revoked" ? "bad" : "plain")],
      ["Revoked", (t) => time(t.revoked_at)],
      ["Created by", (t) => t.created_by],
      ["Created", (t) => time(t.created_at)],
      ["Note", (t) => t.note || ""],
    ],
    tokens,
    { rowHeader: true, class: "tokens", region: true, empty: "No token has a role in this project." },
  );
}

function otherRoles(t, project) {
  const rest = Object.keys(t.roles || {})
    .filter((p) => p !== project)
    .sort()
    .map((p) => `${p} (${t.roles[p]})`);
  return rest.length ? rest.join(", ") : h("span", { class: "muted" }, "none");
}

// createForm mints a token in the project; the answer's secret is shown
// in place once, with a copy button and a warning.
function createForm(refresh, project) {
  const principal = field("Principal", { name: "principal", required: true, autocomplete: "off", maxlength: 128 }, { help: "Who the token acts as: every change made with it is attributed to this name." });
  const role = selectField("Role", { name: "role" }, ROLES, { selected: "viewer", help: `Its role in project ${project}.` });
  const expires = selectField("Expires", { name: "expires" }, EXPIRIES, { selected: "720h" });
  const note = field("Note", { name: "note", maxlength: 4096 }, { help: "Optional: what the token is for." });
  const result = h("div", { class: "form-result new-token", "aria-live": "polite" });
  return h(
    "div",
    null,
    actionForm({
      title: `Create a token in ${project}`,
      fields: [principal, role, expires, note],
      submit: "Create token",
      resultBox: result,
      what: () => "create a token",
      act: () =>
        api.post("/v1/tokens", {
          principal: principal.input.value.trim(),
          role: role.input.value,
          expires_in: expires.input.value || undefined,
          note: note.input.value.trim() || undefined,
        }),
      ok: (created) => {
        principal.input.value = "";
        note.input.value = "";
        refresh().catch(() => {});
        return secretBox(created);
      },
    }),
    result,
  );
}

// secretBox shows a new token's secret, once: nothing keeps it, and the
// list never shows it.
function secretBox(created) {
  const t = created.token;
  const secret = h("input", { id: "new-token-secret", type: "text", readonly: true, value: created.secret, size: 40, spellcheck: "false", autocomplete: "off" });
  const copied = h("p", { class: "copy-state", role: "status" });
  const copy = h("button", { type: "button", class: "secondary", id: "copy-token" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(created.secret);
      copied.textContent = "Copied to the clipboard.";
    } catch {
      secret.focus();
      secret.select();
      copied.textContent = "Could not reach the clipboard: the token is selected, copy it with Ctrl+C.";
    }
  });
  return h(
    "div",
    { class: "alert alert-wait secret" },
    h("p", { class: "alert-title" }, `Token ${t.id} created for ${t.principal}`),
    h("p", { class: "warning" }, "Copy it now: this is the only time its secret is shown. The server keeps only its hash; if it is lost, revoke it and create another."),
    h("div", { class: "field" }, h("label", { for: "new-token-secret" }, "New token"), h("div", { class: "secret-row" }, secret, copy)),
    copied,
    h("p", null, `Role ${Object.entries(t.roles).map(([p, r]) => `${r} in ${p}`).join(", ")}; `, t.expires_at ? ["expires ", time(t.expires_at)] : "never expires", "."),
  );
}

// revokeForm ends a live token at once, with a reason (kept in the
// token.revoked event). Revoking the token the page uses logs out.
function revokeForm(tokens, refresh, me, ctx, result) {
  const live = tokens.filter((t) => t.state === "live");
  if (!live.length) return h("div", { class: "action" }, h("h3", null, "Revoke a token"), h("p", { class: "muted" }, "No live token to revoke."));
  const which = selectField(
    "Token",
    { name: "token", required: true },
    [["", "Choose a token…"], ...live.map((t) => [t.id, `${t.id} — ${t.principal} (${t.roles[me.project] || "no role here"})`])],
    { selected: "" },
  );
  const reason = field("Reason", { name: "reason", required: true, maxlength: 4096 }, { textarea: true, help: "Why it ends now: kept with the revocation." });
  return actionForm({
    title: "Revoke a token",
    fields: [which, reason],
    submit: "Revoke",
    resultBox: result,
    what: () => `revoke ${which.input.value || "a token"}`,
    act: () => api.post(api.path`/v1/tokens/${which.input.value}/revoke`, { reason: reason.input.value.trim() }),
    ok: (t) => {
      if (me && t.id === me.token) {
        // The page's own token: nothing more can be asked with it.
        session.logout();
        ctx.signedIn();
      } else {
        refresh().catch(() => {});
      }
      return okBox(h("p", { class: "alert-title" }, `Revoked ${t.id}`), h("p", null, `${t.principal}'s token stopped working at `, time(t.revoked_at), "."));
    },
  });
}
