package bus_test

import (
	"testing"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/bus/bustest"
)

// The in-process bus has one client per bus: every attach returns it.
func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) func(t *testing.T) bustest.Bus {
		b := bus.New(nil)
		t.Cleanup(b.Close)
		return func(*testing.T) bustest.Bus { return b }
	})
}
