// Action forms: every action that changes state names a reason, shows
// what it is about to do, and shows the server's answer — a refusal
// included — in place, as an alert. Who acts is the logged-in token's
// principal: the server takes it from the request, not from the form.
import { h, errorBox } from "./dom.js";

let seq = 0;

// field is a labelled input or textarea.
export function field(label, attrs, opts = {}) {
  const id = `f${++seq}`;
  const tag = opts.textarea ? "textarea" : "input";
  const input = h(tag, { id, name: attrs.name, ...attrs, "aria-describedby": opts.help ? id + "-help" : null });
  return {
    input,
    node: h(
      "div",
      { class: ["field", opts.inline && "field-inline"] },
      opts.inline ? [input, h("label", { for: id }, label)] : [h("label", { for: id }, label), input],
      opts.help ? h("p", { id: id + "-help", class: "help" }, opts.help) : null,
    ),
  };
}

// selectField is a labelled select of options, [value, text] pairs; it
// fits actionForm's fields like field() does.
export function selectField(label, attrs, options, opts = {}) {
  const id = `f${++seq}`;
  const input = h(
    "select",
    { id, name: attrs.name, ...attrs, "aria-describedby": opts.help ? id + "-help" : null },
    options.map(([value, text]) => h("option", { value, selected: value === opts.selected }, text)),
  );
  return {
    input,
    node: h("div", { class: "field" }, h("label", { for: id }, label), input, opts.help ? h("p", { id: id + "-help", class: "help" }, opts.help) : null),
  };
}

// actionForm builds a form whose submit runs act(button) and shows
// its result: ok(answer) on success, the API error as an alert otherwise.
// fields is a list of field() results; what(button) names the action for
// errors; buttons, when given, are [label, value, class] submit buttons in
// place of the one labelled submit, and button is the value of the one used.
// resultBox, when given, shows the result outside the form (for a form that
// after() may remove).
export function actionForm({ title, fields, submit, buttons, what, act, ok, after, resultBox }) {
  const result = resultBox || h("div", { class: "form-result", "aria-live": "polite" });
  const all = (buttons || [[submit, "submit"]]).map(([label, value, cls]) => h("button", { type: "submit", value, class: cls }, label));
  const id = `form${++seq}`;
  const form = h(
    "form",
    { class: "action", "aria-labelledby": id, novalidate: true },
    h("h3", { id }, title),
    fields.map((f) => f.node),
    h("div", { class: "form-actions" }, all),
    resultBox ? null : result,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const which = (e.submitter && e.submitter.value) || all[0].value;
    const missing = fields.find((f) => f.input.required && !f.input.value.trim());
    if (missing) {
      result.replaceChildren(errorBox({ kind: "invalid", message: `${missing.node.querySelector("label").textContent} is required.` }, what(which)));
      missing.input.focus();
      return;
    }
    all.forEach((b) => (b.disabled = true));
    result.replaceChildren(h("p", { class: "muted" }, "Working…"));
    try {
      const answer = await act(which);
      result.replaceChildren(ok(answer));
    } catch (err) {
      result.replaceChildren(errorBox(err, what(which)));
    } finally {
      all.forEach((b) => (b.disabled = false));
      if (after) after();
    }
  });
  return form;
}
