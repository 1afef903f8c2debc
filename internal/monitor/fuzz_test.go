package monitor

import (
	"testing"
	"time"
)

func FuzzDecodeProfile(f *testing.F) {
	p := synthProfile(f, true)
	b, err := p.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"buckets":4,"labels":["a","b"],"lengths":[1],"confidences":[0.5],"unigrams":[0,0,0,0],"char3":[0,0,0,0],"predictions":[1,1],"calibration":[{"upper":[],"rate":[]},{"upper":[],"rate":[]}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeProfile(data)
		if err != nil {
			return
		}
		// A valid profile must be usable: extract, window, evaluate.
		st, err := NewState(WindowSpec{Kind: CountWindows, Size: 3, Buckets: p.Buckets, Labels: len(p.Labels)})
		if err != nil {
			t.Fatalf("profile decoded but its window spec is invalid: %v", err)
		}
		ex := p.Extractor()
		probs := make([]float64, len(p.Labels))
		probs[0] = 1
		var w []*Window
		for _, text := range []string{"hello world", "\xff", "spam spam"} {
			w = st.Add(ex.Extract(Request{Text: text, Probs: probs, Label: p.Labels[0]}), time.Time{})
		}
		if _, err := Evaluate(p, w[0], Options{Permutations: 10}); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	st, _ := NewState(WindowSpec{Kind: CountWindows, Size: 5, Buckets: 4, Labels: 2})
	p := &Profile{Buckets: 4, Labels: []string{"a", "b"}}
	st.Add(p.Extractor().Extract(Request{Text: "a b c", Probs: []float64{0.4, 0.6}}), time.Time{})
	b, _ := st.Marshal()
	f.Add(b)
	f.Add([]byte(`{"spec":{"kind":"time","every":"1h","origin":"2025-01-01T00:00:00Z","max_embeddings":1,"buckets":2,"labels":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeState(data)
		if err != nil {
			return
		}
		probs := make([]float64, s.Spec.Labels)
		f := Features{Bytes: 1, Tokens: 1, Pred: 0, Probs: probs, Truth: -1, Unigrams: []Gram{{Bucket: 0, Count: 1}}}
		s.Add(f, time.Unix(0, 0))
		s.Tick(time.Unix(1<<40, 0))
		if _, err := s.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}
