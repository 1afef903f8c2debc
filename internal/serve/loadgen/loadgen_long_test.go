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
	if r := many.Throughput / one.Throughput; r < 0.9 {
		t.Logf("ratio %.3f is below the 0.9 goal", r)
	}
}

func TestLongSwapUnderLoad(t *testing.T) {
	swapUnderLoad(t, 4000, 200, longModel, true)
}
