// Package childengine implements serve.Engine over a supervised child
// process, `tailor worker serve`, so that a panic, an out-of-memory kill or
// a hung step in model code cannot take the API and the run scheduler down
// with it. The child runs modelengine.Engine over the artifact store (Serve
// is its side of the protocol); the parent (Engine) keeps tokenization, the
// request features the drift monitor observes, and everything else of
// internal/serve.
//
// Supervision: the parent starts the child with New and again, after a
// backoff (MinBackoff doubling to MaxBackoff, reset once a child has lived
// StableAfter), each time it dies. When it dies every call in flight fails
// at once with an errs.Unavailable error (HTTP 503 with Retry-After), and
// calls that arrive while the next one starts wait for it (up to
// ReadyWait). Models need not be loaded again by hand: every call names
// its models' targets, and a child that has not loaded one (a new child)
// loads it first. A call whose context ends sends a cancel frame; the
// child cancels that call's context (its loads stop, its steps stop at the
// next group) and the parent returns the context's error at once; a child
// that has not answered the canceled call within CancelGrace (a step stuck
// where cancellation cannot reach) is killed as hung, as is a child that
// takes no request for WriteTimeout. The child ends
// when its stdin closes, and on Linux with the parent (parent-death
// signal). Its stderr (slog JSON records) is forwarded to the parent's
// logger with the child's pid; other lines (a panic's trace) as warnings.
// Stats sums the counters of dead children with the live one's, and counts
// restarts; the child adds its resident memory.
//
// Protocol, over the child's stdin (requests) and stdout (answers), defined
// in protocol.go: a stream of frames, each an 18-byte header — magic 0xA7,
// type (one byte), request id (uint64), JSON length (uint32), data length
// (uint32), all big-endian — then the JSON part (at most MaxMetaBytes) and
// the data part (at most MaxDataBytes, little-endian 4-byte words: int32
// tokens in requests, float32 rows in answers, so vocabulary-sized logits
// never go through JSON). The parent's first frame is a hello carrying the
// Spec (blob store address, budgets, threads); the child answers a hello with
// its pid when ready. Requests: load (a serve.Target; answers the model's
// labels, sizes and EOS ids), classify and logits (the distinct targets
// once, then rows of model index, sequence id and token count; answers
// float32 rows), stats (answers serve.EngineStats), release (a sequence's
// KV cache; no answer), cancel (the id is the call to cancel; no answer).
// Every other request gets one result or error frame with its id, in any
// order, so calls run concurrently; an error frame keeps the error's kind
// (errs.Kind). A reader rejects a bad frame (magic, limits, lengths that do
// not add up) with an error and stops, never allocating much more than the
// bytes that arrived.
//
// It imports serve, serve/modelengine, basemodel, blob/blobstore, engine/tokenizer
// and errs; never app, registry or store.
package childengine
