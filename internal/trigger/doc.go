// Package trigger owns the rules of continuous adaptation that react to
// events: a declared Spec (YAML, versioned like a recipe) says which event
// it reacts to (drift, accumulated feedback, a new base version, or a cron
// schedule), the conditions it checks, the ordered actions it runs (retrain,
// rebase, evaluate, promote_if_pass, rollback, webhook) and its limits (debounce,
// maximum concurrency).
//
// It holds the pure parts: parsing and validating specs with errors naming
// file, line and field; Match, which decides whether an event fires a
// trigger; a five-field cron parser; the webhook target check that refuses
// loopback, link-local, private and unspecified addresses; and Do, which
// carries out one action through the Ops interface and reports a Result
// that the caller persists before the next action (so a resumed firing
// continues rather than repeats). docs/triggers.md has the grammar and the
// durability contract.
//
// This package imports only the standard library, yaml.v3, internal/errs,
// internal/ident, internal/specyaml and the api package (a Result is the
// API's ActionResult, so stored results are what clients read). It must
// not import the server packages (app, store,
// httpapi, bus, registry, …): internal/app wires it in and implements Ops.
package trigger
