// Package train owns the engine's training loop: a seeded, serializable RNG,
// the optimizers (AdamW matching torch.optim.AdamW, SGD), learning-rate
// schedules (constant, linear and cosine with warmup, as in Hugging Face
// transformers), global-norm gradient clipping, gradient accumulation, the
// data pipeline (seeded epoch shuffle, length bucketing or causal-LM packing,
// truncation) and deterministic checkpoints that resume to bit-identical
// weights.
//
// The loop drives any engine.Trainable; it must not import the model
// packages (internal/engine/model, nn, gemm) nor anything above the engine.
// Where checkpoints are stored is the caller's business: Hooks.OnCheckpoint
// hands it a writer function.
//
// # Determinism
//
// Given the same model initialisation, dataset and Options, Run produces
// bit-identical weights: every random choice comes from RNG (xoshiro256**)
// seeded from Options.Seed, reductions run in a fixed order with float64
// accumulation, and float32 element updates use explicit conversions so the
// compiler cannot fuse them into FMAs. A run stopped at any optimizer step
// and resumed from its checkpoint continues to the same bytes.
//
// # Choices
//
//   - Gradient accumulation: the Trainable returns summed losses and adds the
//     gradient of the sum; the trainer divides by the loss-term count of all
//     micro-batches of the step, so the step's loss is the mean over every
//     token (or example) of the accumulated batch, independent of how it is
//     split into micro-batches.
//   - Checkpoints are taken only at optimizer-step boundaries, never inside
//     an accumulation cycle, so no gradients are saved. A step whose
//     micro-batches hold no loss terms (all masked) makes no update.
//   - Each epoch's order depends only on (Seed, epoch), so the data cursor
//     (epoch, next micro-batch) is enough to resume the data stream;
//     micro-batches of one step may span two epochs.
package train
