package nn

import (
	"errors"
	"math"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

func TestInvFreq(t *testing.T) {
	plain, err := InvFreq(8, 500000, engine.RopeScaling{})
	if err != nil {
		t.Fatal(err)
	}
	l3 := engine.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 16}
	scaled, err := InvFreq(8, 500000, l3)
	if err != nil {
		t.Fatal(err)
	}
	// wavelengths 2π/f: 6.28 (between 16/4 and 16/1: smoothed), then > 16 (divided by 8).
	if scaled[0] >= plain[0] || scaled[0] <= plain[0]/8 {
		t.Errorf("medium frequency %g not smoothed between %g and %g", scaled[0], plain[0]/8, plain[0])
	}
	for i := 1; i < 4; i++ {
		if math.Abs(scaled[i]-plain[i]/8) > 1e-7*plain[i] {
			t.Errorf("low frequency %d: %g, want %g", i, scaled[i], plain[i]/8)
		}
	}
	lin, _ := InvFreq(8, 10000, engine.RopeScaling{Type: "linear", Factor: 2})
	base, _ := InvFreq(8, 10000, engine.RopeScaling{})
	if math.Abs(lin[1]-base[1]/2) > 1e-7 {
		t.Errorf("linear scaling %g, want %g", lin[1], base[1]/2)
	}
	for _, tc := range []struct {
		name  string
		dim   int
		theta float64
		s     engine.RopeScaling
	}{
		{"odd_dim", 7, 10000, engine.RopeScaling{}},
		{"theta", 8, 0, engine.RopeScaling{}},
		{"type", 8, 10000, engine.RopeScaling{Type: "dynamic"}},
		{"factor", 8, 10000, engine.RopeScaling{Type: "linear"}},
		{"llama3", 8, 10000, engine.RopeScaling{Type: "llama3", Factor: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := InvFreq(tc.dim, tc.theta, tc.s); !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("got %v, want invalid", err)
			}
		})
	}
}

func FuzzParseActivation(f *testing.F) {
	for _, s := range []string{"silu", "gelu_new", "gelu", "gelu_pytorch_tanh", "relu", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseActivation(s)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("wrong error kind: %v", err)
			}
			return
		}
		if a != SiLU && a != GELUTanh && a != GELUErf {
			t.Fatalf("%q parsed to unknown %q", s, a)
		}
	})
}
