// Package serve is Tailor's inference server: an OpenAI-compatible HTTP API
// (chat completions, completions, models, classify) over many adapters that
// share one copy of each base model, with continuous batching, a bounded
// queue (429 + Retry-After when full), hot swap of aliases, deployments (a
// primary alias, an optional canary and an optional shadow), a sampled
// request log and Prometheus metrics.
//
// The model work sits behind the Engine interface (modelengine/ implements
// it over engine/model; childengine/ runs that in a supervised child
// process, `tailor worker serve`); model names resolve through the Resolver interface,
// which the composition root implements over the registry and store. The
// request log lives in reqlog/, the load generator in loadgen/, and test
// fixtures (tiny real models and adapters) in servetest/.
//
// Lock order: Server.mu before deployment state; a scheduler's mu is a leaf.
//
// This package imports errs, engine/tokenizer and its own sub-packages; it
// must not import app, httpapi, cli, registry or store implementations.
package serve
