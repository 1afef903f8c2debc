package monitor

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tailor-ml/tailor/internal/reference"
)

var update = flag.Bool("update", false, "rewrite testdata/reference/inputs.json and expected.json (needs scipy)")

// Tolerances against scipy/numpy: statistics 1e-9 absolute; p-values 1e-6
// relative (1e-12 absolute below 1e-6).
const (
	tolStat  = 1e-9
	tolPRel  = 1e-6
	tolPTiny = 1e-12
)

type refInputs struct {
	KS []struct {
		Name string    `json:"name"`
		A    []float64 `json:"a"`
		B    []float64 `json:"b"`
	} `json:"ks"`
	ChiSquare []struct {
		Name     string    `json:"name"`
		Observed []float64 `json:"observed"`
		Expected []float64 `json:"expected"`
	} `json:"chisquare"`
	Divergence []struct {
		Name    string    `json:"name"`
		Ref     []float64 `json:"ref"`
		Cur     []float64 `json:"cur"`
		Epsilon float64   `json:"epsilon"`
	} `json:"divergence"`
	RateRaw []map[string]any `json:"rate"`
	MMD     []struct {
		Name string      `json:"name"`
		X    [][]float64 `json:"x"`
		Y    [][]float64 `json:"y"`
	} `json:"mmd"`
}

type refOutputs struct {
	KS []struct {
		Name   string  `json:"name"`
		D      float64 `json:"d"`
		PValue float64 `json:"pvalue"`
	} `json:"ks"`
	ChiSquare []struct {
		Name      string  `json:"name"`
		Statistic float64 `json:"statistic"`
		PValue    float64 `json:"pvalue"`
	} `json:"chisquare"`
	Divergence []struct {
		Name string  `json:"name"`
		PSI  float64 `json:"psi"`
		JS   float64 `json:"js"`
	} `json:"divergence"`
	Rate []struct {
		Name   string  `json:"name"`
		Z      float64 `json:"z"`
		PValue float64 `json:"pvalue"`
	} `json:"rate"`
	MMD []struct {
		Name      string  `json:"name"`
		MMD2      float64 `json:"mmd2"`
		Bandwidth float64 `json:"bandwidth"`
	} `json:"mmd"`
}

var refDir = filepath.Join("testdata", "reference")

// genInputs builds the fixture inputs deterministically: KS cases cover
// equal and unequal sizes, ties, identical samples, and both sides of
// scipy's exact/asymptotic switch at 10000.
func genInputs() map[string]any {
	rng := rand.New(rand.NewPCG(8, 4))
	normal := func(n int, mu, sd float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Round((mu+sd*rng.NormFloat64())*1e6) / 1e6
		}
		return out
	}
	ints := func(n int, mu, sd float64) []float64 {
		out := normal(n, mu, sd)
		for i := range out {
			out[i] = math.Round(out[i])
		}
		return out
	}
	ks := func(name string, a, b []float64) map[string]any { return map[string]any{"name": name, "a": a, "b": b} }
	same := normal(50, 0, 1)
	in := map[string]any{}
	in["ks"] = []any{
		ks("tiny_3_4", normal(3, 0, 1), normal(4, 0.5, 1)),
		ks("equal_20", normal(20, 0, 1), normal(20, 0.8, 1)),
		ks("equal_20_null", normal(20, 0, 1), normal(20, 0, 1)),
		ks("unequal_37_53", normal(37, 0, 1), normal(53, 0.3, 1.2)),
		ks("ties_ints_120_80", ints(120, 60, 8), ints(80, 62, 8)),
		ks("identical_50", same, same),
		ks("medium_300_450", normal(300, 0, 1), normal(450, 0.1, 1)),
		ks("equal_1000", normal(1000, 0, 1), normal(1000, 0.05, 1)),
		ks("exact_2000_3001", ints(2000, 100, 30), ints(3001, 101, 30)),
		ks("asymp_12000_500", normal(12000, 0, 1), normal(500, 0.1, 1)),
		ks("asymp_12000_60", normal(12000, 0, 1), normal(60, 0, 1)),
		ks("asymp_15000_11000", normal(15000, 0, 1), normal(11000, 0.02, 1)),
		ks("asymp_20000_300_far", normal(20000, 0, 1), normal(300, 1.5, 1)),
	}
	in["chisquare"] = []any{
		map[string]any{"name": "three", "observed": []float64{30, 50, 20}, "expected": []float64{33.3, 33.4, 33.3}},
		map[string]any{"name": "close", "observed": []float64{101, 99, 48, 52}, "expected": []float64{100, 100, 50, 50}},
		map[string]any{"name": "far", "observed": []float64{400, 50, 50}, "expected": []float64{166, 167, 167}},
		map[string]any{"name": "binary", "observed": []float64{7, 3}, "expected": []float64{5, 5}},
	}
	hist := func(k int, tilt float64) []float64 {
		out := make([]float64, k)
		for i := range out {
			w := math.Exp(-float64(i) * tilt / float64(k))
			out[i] = math.Floor(w * float64(rng.IntN(60)))
		}
		return out
	}
	in["divergence"] = []any{
		map[string]any{"name": "k16", "ref": hist(16, 1), "cur": hist(16, 2), "epsilon": 0.5},
		map[string]any{"name": "k1024", "ref": hist(1024, 3), "cur": hist(1024, 3), "epsilon": 0.5},
		map[string]any{"name": "k64_eps_small", "ref": hist(64, 0), "cur": hist(64, 5), "epsilon": 1e-4},
		map[string]any{"name": "disjoint", "ref": []float64{5, 0, 3, 0}, "cur": []float64{0, 4, 0, 1}, "epsilon": 0.5},
	}
	in["rate"] = []any{
		map[string]any{"name": "same", "xr": 120, "nr": 100000, "xw": 25, "nw": 20000, "phi": 1},
		map[string]any{"name": "up", "xr": 120, "nr": 100000, "xw": 60, "nw": 20000, "phi": 1},
		map[string]any{"name": "up_overdispersed", "xr": 120, "nr": 100000, "xw": 60, "nw": 20000, "phi": 3.5},
		map[string]any{"name": "down", "xr": 5000, "nr": 50000, "xw": 300, "nw": 5000, "phi": 1.2},
	}
	vecs := func(n, d int, shift float64) [][]float64 {
		out := make([][]float64, n)
		for i := range out {
			out[i] = normal(d, shift, 1)
		}
		return out
	}
	in["mmd"] = []any{
		map[string]any{"name": "null_40_30", "x": vecs(40, 5, 0), "y": vecs(30, 5, 0)},
		map[string]any{"name": "shift_40_30", "x": vecs(40, 5, 0), "y": vecs(30, 5, 0.7)},
		map[string]any{"name": "dim32_25_25", "x": vecs(25, 32, 0), "y": vecs(25, 32, 0.2)},
	}
	return in
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func runReference(t *testing.T, py, inputs string) []byte {
	t.Helper()
	cmd := exec.Command(py, filepath.Join(refDir, "reference.py"), inputs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference.py: %v\n%s", err, stderr.String())
	}
	return out
}

func TestReferenceUpdate(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the reference fixtures")
	}
	py := reference.Python(t, "scipy", "numpy")
	b, err := json.Marshal(genInputs())
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(refDir, "inputs.json")
	if err := os.WriteFile(in, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(refDir, "expected.json"), runReference(t, py, in), 0o644); err != nil {
		t.Fatal(err)
	}
}

// maxDiff tracks the largest differences seen, for the log.
type maxDiff struct{ stat, pRel float64 }

func (m *maxDiff) checkStat(t *testing.T, what string, got, want float64) {
	t.Helper()
	d := math.Abs(got - want)
	m.stat = math.Max(m.stat, d)
	if !(d <= tolStat) {
		t.Errorf("%s: go %.17g, reference %.17g (|diff| %.3g > %g)", what, got, want, d, tolStat)
	}
}

func (m *maxDiff) checkP(t *testing.T, what string, got, want float64) {
	t.Helper()
	d := math.Abs(got - want)
	if want >= 1e-6 {
		rel := d / want
		m.pRel = math.Max(m.pRel, rel)
		if !(rel <= tolPRel) {
			t.Errorf("%s: p go %.17g, reference %.17g (rel diff %.3g > %g)", what, got, want, rel, tolPRel)
		}
		return
	}
	if !(d <= tolPTiny) {
		t.Errorf("%s: p go %.17g, reference %.17g (|diff| %.3g > %g)", what, got, want, d, tolPTiny)
	}
}

// TestReferenceGolden compares the Go statistics with the committed scipy/
// numpy outputs; it needs no Python.
func TestReferenceGolden(t *testing.T) {
	var in refInputs
	readJSON(t, filepath.Join(refDir, "inputs.json"), &in)
	var want refOutputs
	readJSON(t, filepath.Join(refDir, "expected.json"), &want)
	var m maxDiff
	for i, c := range in.KS {
		t.Run("ks/"+c.Name, func(t *testing.T) {
			r := KS2Samp(c.A, c.B)
			m.checkStat(t, "D", r.D, want.KS[i].D)
			m.checkP(t, r.Method, r.PValue, want.KS[i].PValue)
		})
	}
	for i, c := range in.ChiSquare {
		t.Run("chisquare/"+c.Name, func(t *testing.T) {
			r := ChiSquare(c.Observed, c.Expected)
			m.checkStat(t, "statistic", r.Statistic, want.ChiSquare[i].Statistic)
			m.checkP(t, "chisquare", r.PValue, want.ChiSquare[i].PValue)
		})
	}
	for i, c := range in.Divergence {
		t.Run("divergence/"+c.Name, func(t *testing.T) {
			psi, _, _, _ := PSICounts(c.Ref, c.Cur, c.Epsilon)
			m.checkStat(t, "psi", psi, want.Divergence[i].PSI)
			m.checkStat(t, "js", JSDistance(c.Ref, c.Cur), want.Divergence[i].JS)
		})
	}
	for i, c := range in.RateRaw {
		t.Run("rate/"+c["name"].(string), func(t *testing.T) {
			f := func(k string) float64 { return c[k].(float64) }
			r := RateTest(f("xr"), f("nr"), f("xw"), f("nw"), f("phi"))
			m.checkStat(t, "z", r.Z, want.Rate[i].Z)
			m.checkP(t, "rate", r.PValue, want.Rate[i].PValue)
		})
	}
	for i, c := range in.MMD {
		t.Run("mmd/"+c.Name, func(t *testing.T) {
			mmd2, bw := MMD2(c.X, c.Y, 0)
			m.checkStat(t, "mmd2", mmd2, want.MMD[i].MMD2)
			m.checkStat(t, "bandwidth", bw, want.MMD[i].Bandwidth)
		})
	}
	t.Logf("max |diff| of statistics %.3g; max relative diff of p-values %.3g", m.stat, m.pRel)
}

// TestReferenceScipy runs reference.py on the fixtures with Debian's scipy
// and numpy and checks that the committed golden file is what they output.
func TestReferenceScipy(t *testing.T) {
	py := reference.Python(t, "scipy", "numpy")
	got := runReference(t, py, filepath.Join(refDir, "inputs.json"))
	var live, golden map[string][]map[string]any
	if err := json.Unmarshal(got, &live); err != nil {
		t.Fatalf("reference.py output: %v", err)
	}
	readJSON(t, filepath.Join(refDir, "expected.json"), &golden)
	var m maxDiff
	for kind, rows := range golden {
		if len(live[kind]) != len(rows) {
			t.Fatalf("%s: scipy gives %d rows, golden has %d; rerun with -update", kind, len(live[kind]), len(rows))
		}
		for i, row := range rows {
			for k, v := range row {
				gv, ok := v.(float64)
				if !ok {
					continue
				}
				lv := live[kind][i][k].(float64)
				what := kind + "/" + row["name"].(string) + "/" + k
				if k == "pvalue" {
					m.checkP(t, what, gv, lv)
				} else {
					m.checkStat(t, what, gv, lv)
				}
			}
		}
	}
	t.Logf("golden vs live scipy: max |diff| %.3g, max relative p diff %.3g", m.stat, m.pRel)
}
