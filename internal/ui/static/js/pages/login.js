// Log-in: a token (tlr_<id>_<secret>, from `tailor token create` or the
// server's bootstrap-token file) checked with GET /v1/whoami and kept in
// this tab's sessionStorage only (api.js). A refused token is shown in
// place and nothing is kept.
import { h, errorBox, okBox } from "../dom.js";
import { field } from "../forms.js";
import * as session from "../session.js";

export async function loginPage(ctx) {
  const me = session.identity();
  const token = field(
    "Token",
    { name: "token", type: "password", required: true, autocomplete: "off", spellcheck: "false", maxlength: 256 },
    { help: "tlr_… from `tailor token create` (or the server's bootstrap-token file). Kept in this browser tab only, until you log out or close it." },
  );
  const result = h("div", { class: "form-result", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h("form", { class: "action login", "aria-labelledby": "login-title", novalidate: true }, h("h2", { id: "login-title" }, "Log in with a token"), token.node, h("div", { class: "form-actions" }, submit), result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = token.input.value.trim();
    if (!t) {
      result.replaceChildren(errorBox({ kind: "invalid", message: "Token is required." }, "log in"));
      token.input.focus();
      return;
    }
    submit.disabled = true;
    result.replaceChildren(h("p", { class: "muted" }, "Checking the token…"));
    try {
      const who = await session.login(t);
      token.input.value = "";
      result.replaceChildren(okBox(h("p", { class: "alert-title" }, "Logged in"), h("p", null, `As ${who.principal} in project ${who.project}.`)));
      ctx.signedIn();
    } catch (err) {
      result.replaceChildren(errorBox(err, "log in"));
    } finally {
      submit.disabled = false;
    }
  });
  return {
    title: "Log in",
    node: h(
      "div",
      null,
      h("h1", null, "Log in"),
      me
        ? h("p", null, `You act as ${me.principal} (${session.role() || "no role"} in project ${me.project}) without a token: the server runs with --insecure-local. Log in to act as a token's principal instead.`)
        : h("p", null, "This server needs a token for every request. Your role in the project decides what you may do here: a viewer reads, an operator also starts and cancels runs, an admin also promotes, rolls back, approves and resumes."),
      form,
    ),
  };
}
