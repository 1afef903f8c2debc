package monitor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	good := []struct {
		file, id string
	}{
		{"count.good.yaml", ""},
		{"time.good.yaml", ""},
	}
	for _, tc := range good {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "spec", tc.file))
			must(t, err)
			s, err := ParseSpec(tc.file, src)
			must(t, err)
			id, err := s.ID()
			must(t, err)
			// Comments and layout do not change the id.
			again, err := ParseSpec(tc.file, []byte("# another comment\n"+string(src)))
			must(t, err)
			if id2, _ := again.ID(); id2 != id {
				t.Errorf("id changed with a comment: %s vs %s", id, id2)
			}
		})
	}
	bad := []struct {
		file string
		want []string
	}{
		{"small-window.bad.yaml", []string{"small-window.bad.yaml:6", "window.size", "10 to 1000000"}},
		{"below-min-count.bad.yaml", []string{":6", "window.size", "min_count 30"}},
		{"window-kind.bad.yaml", []string{":5", "window.kind", `"hourly"`}},
		{"unknown-field.bad.yaml", []string{"line 7", "detector"}},
		{"bad-every.bad.yaml", []string{":6", "window.every", `"soon"`}},
		{"name.bad.yaml", []string{":1", "name", `"Bad Name"`}},
		{"level.bad.yaml", []string{":6", "detectors.level"}},
		{"empty.bad.yaml", []string{"empty document"}},
		{"syntax.bad.yaml", []string{"syntax.bad.yaml", "line"}},
	}
	for _, tc := range bad {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "spec", tc.file))
			must(t, err)
			_, err = ParseSpec(tc.file, src)
			if err == nil {
				t.Fatal("parsed; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestSpecDefaults(t *testing.T) {
	s, err := ParseSpec("m.yaml", []byte("name: m\nmodel: spam-lora\nalias: champion\nwindow: {kind: count, size: 200}\n"))
	must(t, err)
	d := s.WithDefaults()
	if d.Feedback.Dataset != "spam-lora-feedback" || d.Feedback.Every != 100 {
		t.Errorf("defaults: %+v", d.Feedback)
	}
	explicit, err := ParseSpec("m.yaml", []byte("name: m\nmodel: spam-lora\nalias: champion\nwindow: {kind: count, size: 200}\nfeedback: {dataset: spam-lora-feedback, every: 100}\n"))
	must(t, err)
	a, _ := s.ID()
	b, _ := explicit.ID()
	if a != b {
		t.Errorf("a spec and the same spec with its defaults written out differ: %s vs %s", a, b)
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, n := range []string{"count.good.yaml", "time.good.yaml", "unknown-field.bad.yaml"} {
		src, err := os.ReadFile(filepath.Join("testdata", "spec", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := ParseSpec("f.yaml", src)
		if err != nil {
			return
		}
		n, err := s.Normalize()
		if err != nil {
			t.Fatalf("accepted spec does not normalize: %v", err)
		}
		if s.Window.Kind == CountWindows && s.Window.Size < 10 {
			t.Fatalf("accepted a count window of %d", s.Window.Size)
		}
		_ = n
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
