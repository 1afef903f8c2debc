package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestFeatures(t *testing.T) {
	ex := (&Profile{Buckets: 1024, Vocabulary: []string{"hello", "world"}, Labels: []string{"a", "b"}}).Extractor()
	for _, c := range []struct {
		name                     string
		text                     string
		bytes, tokens, unk, rare int
		char3                    int
	}{
		{"plain", "Hello, World!", 13, 2, 0, 0, 11},
		{"rare", "hello zebra 42", 14, 3, 0, 2, 14},
		{"replacement", "bad \uFFFD char", 12, 2, 3, 2, 8},
		{"invalid", "ab\xff\xfecd", 6, 2, 2, 2, 5},
		{"empty", "", 0, 0, 0, 0, 0},
		{"unicode", "Café naïve", 12, 2, 0, 2, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := ex.Extract(Request{Text: c.text, Probs: []float64{0.3, 0.7}, Label: "a"})
			if f.Bytes != c.bytes || f.Tokens != c.tokens || f.UnknownBytes != c.unk || f.RareTokens != c.rare {
				t.Errorf("bytes/tokens/unknown/rare = %d/%d/%d/%d, want %d/%d/%d/%d", f.Bytes, f.Tokens, f.UnknownBytes, f.RareTokens, c.bytes, c.tokens, c.unk, c.rare)
			}
			n := 0
			for _, g := range f.Char3 {
				n += g.Count
			}
			if n != c.char3 {
				t.Errorf("char 3-grams %d, want %d", n, c.char3)
			}
			if f.Pred != 1 || f.Confidence != 0.7 || f.Truth != 0 {
				t.Errorf("pred %d conf %v truth %d", f.Pred, f.Confidence, f.Truth)
			}
		})
	}
	// FNV-1a 32 of "a" is 0xe40c292c.
	if got, want := Bucket("a", 1024), int(uint32(0xe40c292c)%1024); got != want {
		t.Errorf("Bucket(a) = %d, want %d", got, want)
	}
}

func TestChiSquareEdges(t *testing.T) {
	for _, c := range []struct {
		name     string
		obs, exp []float64
		stat, p  float64
	}{
		{"perfect", []float64{10, 10}, []float64{10, 10}, 0, 1},
		{"impossible", []float64{5, 5}, []float64{10, 0}, math.Inf(1), 0},
		{"both_zero", []float64{10, 0, 0}, []float64{10, 0, 0}, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ChiSquare(c.obs, c.exp)
			if r.Statistic != c.stat || math.Abs(r.PValue-c.p) > 1e-12 {
				t.Errorf("got %v p %v, want %v p %v", r.Statistic, r.PValue, c.stat, c.p)
			}
		})
	}
}

func TestMultipleTesting(t *testing.T) {
	p := []float64{0.01, 0.04, 0.03, 0.005, math.NaN(), 0.5}
	for _, c := range []struct {
		name   string
		adj    []Adjusted
		reject []bool
		first  float64
	}{
		// BH at 0.05, m = 5: sorted 0.005 0.01 0.03 0.04 0.5; thresholds .01 .02 .03 .04 .05 → k = 4.
		{"bh", BenjaminiHochberg(p, 0.05), []bool{true, true, true, true, false, false}, 0.025},
		// Holm: 0.005 ≤ .01 ✓, 0.01 ≤ .0125 ✓, 0.03 ≤ .0167 ✗ stop.
		{"holm", Holm(p, 0.05), []bool{true, false, false, true, false, false}, 0.04},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i, a := range c.adj {
				if a.Reject != c.reject[i] {
					t.Errorf("p[%d]=%v reject %v, want %v", i, p[i], a.Reject, c.reject[i])
				}
			}
			if math.Abs(c.adj[0].Adjusted-c.first) > 1e-12 || !math.IsNaN(c.adj[4].Adjusted) {
				t.Errorf("adjusted %v, want p[0] → %v and NaN stays NaN", c.adj, c.first)
			}
		})
	}
}

func TestMMDPermutation(t *testing.T) {
	w := synthWorld{}
	emb := func(seed uint64, n int, s synthWorld) [][]float64 {
		var out [][]float64
		for _, x := range s.samples(seed, n) {
			out = append(out, x.Embedding)
		}
		return out
	}
	ref := emb(1, 60, w)
	for _, c := range []struct {
		name    string
		y       [][]float64
		drifted bool
	}{
		{"null", emb(2, 60, w), false},
		{"shifted", emb(3, 60, synthWorld{shift: 1}), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := MMDTest(ref, c.y, 400, 7)
			again := MMDTest(ref, c.y, 400, 7)
			if r != again {
				t.Fatalf("not deterministic: %+v vs %+v", r, again)
			}
			if (r.PValue < 0.01) != c.drifted {
				t.Errorf("MMD² %.4g p %.4g, want drifted=%v", r.MMD2, r.PValue, c.drifted)
			}
		})
	}
}

func TestCBPE(t *testing.T) {
	p := synthProfile(t, false)
	ex := p.Extractor()
	var preds, truth []int
	var probs [][]float64
	for _, r := range (synthWorld{}).requests(9, 2000, false) {
		f := ex.Extract(r)
		preds, truth, probs = append(preds, f.Pred), append(truth, f.Truth), append(probs, f.Probs)
	}
	acc, f1 := CBPE(p.Calibration, preds, probs)
	real := Realise(preds, truth, len(p.Labels))
	t.Logf("CBPE accuracy %.4f macro-F1 %.4f; realised %.4f / %.4f; reference %.4f", acc, f1, real.Accuracy, real.MacroF1, p.Accuracy)
	if math.Abs(acc-real.Accuracy) > 0.03 || math.Abs(f1-real.MacroF1) > 0.03 {
		t.Errorf("CBPE (%.4f, %.4f) is more than 0.03 from realised (%.4f, %.4f)", acc, f1, real.Accuracy, real.MacroF1)
	}
	if r := Realise([]int{0, 1, 1, -1}, []int{0, 1, 0, 1}, 2); r.Labelled != 3 || math.Abs(r.Accuracy-2.0/3) > 1e-12 || math.Abs(r.MacroF1-2.0/3) > 1e-12 {
		t.Errorf("Realise = %+v, want 3 labelled, accuracy 2/3, macro-F1 2/3", r)
	}
}

func TestWindows(t *testing.T) {
	p := synthProfile(t, false)
	ex := p.Extractor()
	reqs := (synthWorld{}).requests(5, 25, false)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		spec   WindowSpec
		closed []int // window sizes closed, in order, after all adds and a final tick
	}{
		{"count10", WindowSpec{Kind: CountWindows, Size: 10}, []int{10, 10}},
		{"time1m", WindowSpec{Kind: TimeWindows, Every: Duration(time.Minute), Origin: t0}, []int{6, 6, 6, 6, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Buckets, c.spec.Labels = p.Buckets, len(p.Labels)
			st, err := NewState(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			for i, r := range reqs {
				at := t0.Add(time.Duration(i) * 10 * time.Second)
				// Persist and restore the state before every request: a
				// restart at any point loses nothing.
				b, err := st.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if st, err = DecodeState(b); err != nil {
					t.Fatal(err)
				}
				b2, _ := st.Marshal()
				if !bytes.Equal(b, b2) {
					t.Fatalf("state encoding is not stable across decode/encode")
				}
				for _, w := range st.Add(ex.Extract(r), at) {
					sizes = append(sizes, w.Count)
				}
			}
			for _, w := range st.Tick(t0.Add(time.Hour)) {
				sizes = append(sizes, w.Count)
			}
			if len(sizes) != len(c.closed) {
				t.Fatalf("closed windows of sizes %v, want %v", sizes, c.closed)
			}
			for i := range sizes {
				if sizes[i] != c.closed[i] {
					t.Fatalf("closed windows of sizes %v, want %v", sizes, c.closed)
				}
			}
		})
	}
	t.Run("bad_spec", func(t *testing.T) {
		for _, s := range []WindowSpec{{Kind: "hourly", Buckets: 8, Labels: 2}, {Kind: CountWindows, Buckets: 8, Labels: 2}, {Kind: TimeWindows, Buckets: 8, Labels: 2}} {
			if _, err := NewState(s); !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("NewState(%+v) = %v, want an invalid error", s, err)
			}
		}
	})
}

// TestStateGolden pins the persisted window state format.
func TestStateGolden(t *testing.T) {
	p := &Profile{Buckets: 8, Labels: []string{"a", "b"}, Vocabulary: []string{"cat"}}
	st, err := NewState(WindowSpec{Kind: TimeWindows, Every: Duration(time.Hour), Origin: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Buckets: 8, Labels: 2})
	if err != nil {
		t.Fatal(err)
	}
	ex := p.Extractor()
	st.Add(ex.Extract(Request{Text: "cat dog", Probs: []float64{0.9, 0.1}, Label: "a"}), time.Date(2025, 1, 1, 3, 15, 0, 0, time.UTC))
	st.Add(ex.Extract(Request{Text: "\xff", Probs: []float64{0.2, 0.8}, Embedding: []float64{1, 2}}), time.Date(2025, 1, 1, 3, 16, 0, 0, time.UTC))
	got, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "state", "time_window.json"), got)
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output:\n%s", path, got)
	}
}

func TestProfileRoundTrip(t *testing.T) {
	p := synthProfile(t, true)
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodeProfile(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := q.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatal("profile encoding is not stable across decode/encode")
	}
	again := synthProfile(t, true)
	b3, _ := again.Marshal()
	if !bytes.Equal(b, b3) {
		t.Fatal("BuildProfile is not deterministic")
	}
	for _, c := range []struct{ name, json string }{
		{"empty", ``},
		{"unknown_field", `{"version":1,"extra":1}`},
		{"wrong_version", `{"version":2}`},
		{"trailing", string(b) + `{}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := DecodeProfile([]byte(c.json)); !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("got %v, want an invalid error", err)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	p := synthProfile(t, true)
	ex := p.Extractor()
	window := func(reqs []Request) *Window {
		st, err := NewState(WindowSpec{Kind: CountWindows, Size: len(reqs), Buckets: p.Buckets, Labels: len(p.Labels)})
		if err != nil {
			t.Fatal(err)
		}
		var w []*Window
		for _, r := range reqs {
			w = st.Add(ex.Extract(r), time.Time{})
		}
		return w[0]
	}
	for _, c := range []struct {
		name    string
		reqs    []Request
		drifted bool
		must    []string // detectors that must fire
	}{
		{"unshifted", (synthWorld{}).requests(11, 300, true), false, nil},
		{"shifted", (synthWorld{shift: 1}).requests(12, 300, true), true,
			[]string{DetectKSLength, DetectRareTokens, DetectPSIUnigrams, DetectJSUnigrams, DetectMMDEmbeddings, DetectChi2Labels}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Evaluate(p, window(c.reqs), Options{Permutations: 300})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("result does not encode: %v", err)
			}
			if r.Drifted != c.drifted {
				t.Errorf("drifted = %v, want %v: %+v", r.Drifted, c.drifted, r.Detectors)
			}
			fired := map[string]bool{}
			for _, d := range r.Detectors {
				fired[d.Name] = d.Drifted
				t.Logf("%-18s stat %-10.4g threshold %-8.4g drifted %v %s", d.Name, d.Statistic, d.Threshold, d.Drifted, d.Skipped)
			}
			for _, n := range c.must {
				if !fired[n] {
					t.Errorf("%s did not fire", n)
				}
			}
			if c.drifted {
				top := r.Detectors[3].Top
				if len(top) == 0 || top[0].Example == "" {
					t.Errorf("psi top features %+v: want examples", top)
				}
			}
		})
	}
}

// TestFalseAlarms measures the alarm fraction over resampled windows:
// traffic from the reference distribution must alarm in < 1 % of 500
// windows, shifted traffic in nearly all.
func TestFalseAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("500 windows")
	}
	p := synthProfile(t, false)
	for _, c := range []struct {
		name     string
		world    synthWorld
		windows  int
		min, max float64
	}{
		{"unshifted", synthWorld{}, 500, 0, 0.01},
		{"shifted", synthWorld{shift: 0.3}, 100, 0.95, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := c.world.requests(21, 5000, false)
			rep, err := MeasureAlarms(p, pool, FalseAlarmOptions{Windows: c.windows, WindowSize: 200, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d/%d windows alarmed (%.4f); by detector %v", c.name, rep.Alarmed, rep.Windows, rep.Fraction, rep.ByDetector)
			if rep.Fraction < c.min || rep.Fraction >= c.max && c.max < 1 {
				t.Errorf("alarm fraction %.4f outside [%v, %v)", rep.Fraction, c.min, c.max)
			}
		})
	}
}
