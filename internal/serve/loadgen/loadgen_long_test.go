//go:build long

package loadgen_test

import (
	"testing"

	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

// The measured load test (docs/serving.md):
//
//	go test -tags long -run Long -v ./internal/serve/loadgen/
var longModel = servetest.Options{Hidden: 64, Layers: 2}

func TestLong50Adapters(t *testing.T) {
	one, many := compare(t, 50, 4000, 16, longModel)
	if one.Errors+many.Errors != 0 {
		t.Fatalf("errors: %d and %d", one.Errors, many.Errors)
	}
	// A measured goal, so a long-tagged test (docs/serving.md), not a unit
	// test: both sides run in this process, one after the other, and the
	// ratio, not a time, is checked.
	r := many.Throughput / one.Throughput
	t.Logf("50 adapters %.0f req/s, one %.0f req/s: ratio %.3f", many.Throughput, one.Throughput, r)
	if r < 0.9 {
		t.Errorf("ratio %.3f is below the 0.9 goal", r)
	}
}

func TestLongSwapUnderLoad(t *testing.T) {
	swapUnderLoad(t, 4000, 200, longModel, true)
}
