// Package monitor is the statistics core of drift monitoring: it turns a
// served classify request into features, builds a reference profile from
// training data and the champion's validation outputs, groups requests into
// count- or time-based windows whose state serializes, and runs the drift
// detectors (Kolmogorov–Smirnov, PSI, Jensen–Shannon, rate tests, MMD²,
// chi-square, CBPE) with multiple-testing control over one window.
//
// Everything here is pure and deterministic: no clock, no I/O, no
// goroutines, seeded randomness only. Callers pass times and seeds in.
// Formulas, defaults and window semantics are in docs/monitoring.md.
//
// This package imports only the standard library, gonum and internal/errs.
// It must not import the server packages (serve, httpapi, app, store,
// bus, …): they wire it in, not the other way round.
package monitor
