package residency

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func readPolicy(t *testing.T, file string) *Policy {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "policy", file))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseGood(t *testing.T) {
	block := readPolicy(t, "two-regions.good.yaml")
	flow := readPolicy(t, "flow.good.yaml")
	if !reflect.DeepEqual(block.Regions, flow.Regions) {
		t.Errorf("block and flow style differ: %+v vs %+v", block.Regions, flow.Regions)
	}
	if got := block.ComputeRegions(); !reflect.DeepEqual(got, []string{"eu", "us"}) {
		t.Errorf("ComputeRegions = %v", got)
	}
	if got := block.AllRegions(); !reflect.DeepEqual(got, []string{"eu", "eu-public", "us"}) {
		t.Errorf("AllRegions = %v", got)
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"empty-write.bad.yaml", []string{"empty-write.bad.yaml:4", "regions.eu.write", "empty"}},
		{"bad-region.bad.yaml", []string{"bad-region.bad.yaml:3", "regions.eu.read[1]", `"EU West"`}},
		{"bad-compute.bad.yaml", []string{"bad-compute.bad.yaml:5", "regions.Mars", `"Mars"`}},
		{"duplicate.bad.yaml", []string{"duplicate.bad.yaml:4", "regions.eu.write[1]", "twice"}},
		{"unknown-field.bad.yaml", []string{"unknown-field.bad.yaml", "line 5", "copy"}},
		{"no-regions.bad.yaml", []string{"no-regions.bad.yaml:1", "regions", "empty"}},
		{"empty.bad.yaml", []string{"empty.bad.yaml", "empty document"}},
		{"syntax.bad.yaml", []string{"syntax.bad.yaml", "line"}},
		{"missing-read.bad.yaml", []string{"missing-read.bad.yaml:2", "regions.eu.read", "empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "policy", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(tc.file, src)
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Parse = %v, want an invalid error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	p := readPolicy(t, "two-regions.good.yaml")
	def := Default("eu", "us")
	tests := []struct {
		name    string
		p       *Policy
		compute string
		op      Op
		obj     Object
		want    []string // nil: allowed
	}{
		{"eu reads eu", p, "eu", OpRead, Object{"dataset", "mail@v1", "eu"}, nil},
		{"eu writes eu", p, "eu", OpWrite, Object{"model", "spam", "eu"}, nil},
		{"us reads eu-public", p, "us", OpRead, Object{"dataset", "news", "eu-public"}, nil},
		{"us reads eu", p, "us", OpRead, Object{"dataset", "mail@v1", "eu"},
			[]string{"dataset mail@v1", `region "eu"`, `compute in region "us"`, "may not read", "policy two-regions.good.yaml", "regions.us.read = [us, eu-public]"}},
		{"us writes eu-public", p, "us", OpWrite, Object{"base", "tiny", "eu-public"},
			[]string{"base tiny", `written to region "eu-public"`, `compute in region "us"`, "regions.us.write = [us]"}},
		{"eu reads eu-public", p, "eu", OpRead, Object{"base", "tiny@v2", "eu-public"},
			[]string{"base tiny@v2", `"eu-public"`, "regions.eu.read = [eu]"}},
		{"no rule for compute", p, "ap", OpRead, Object{"dataset", "mail", "ap"},
			[]string{"dataset mail", `compute region "ap"`, "regions.ap"}},
		{"default: itself", def, "us", OpRead, Object{"dataset", "mail", "us"}, nil},
		{"default: another", def, "us", OpRead, Object{"dataset", "mail", "eu"},
			[]string{"dataset mail", `region "eu"`, "default policy", "regions.us.read = [us]"}},
		{"default: write another", def, "eu", OpWrite, Object{"dataset", "mail", "us"},
			[]string{"default policy", "regions.eu.write = [eu]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.compute, tc.op, tc.obj)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errs.ErrForbidden) {
				t.Fatalf("Check = %v, want a forbidden error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Read and Write are Check with their op.
	if (p.Read("us", Object{"dataset", "d", "eu-public"}) != nil) || p.Write("us", Object{"dataset", "d", "eu-public"}) == nil {
		t.Error("Read/Write disagree with the rule for us")
	}
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"two-regions.good.yaml", "flow.good.yaml", "bad-region.bad.yaml", "duplicate.bad.yaml", "syntax.bad.yaml"} {
		src, err := os.ReadFile(filepath.Join("testdata", "policy", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("regions: {a: {read: [a], write: [b]}}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("p.yaml", src)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) || !strings.HasPrefix(err.Error(), "p.yaml") {
				t.Fatalf("error %v is not an invalid error naming the file", err)
			}
			return
		}
		// A parsed policy is well formed and decides every pair.
		for _, c := range p.ComputeRegions() {
			rule := p.Regions[c]
			if len(rule.Read) == 0 || len(rule.Write) == 0 {
				t.Fatalf("region %s parsed with an empty list: %+v", c, rule)
			}
			for _, r := range p.AllRegions() {
				if !IsRegion(r) {
					t.Fatalf("region %q parsed", r)
				}
				o := Object{"dataset", "d", r}
				if err := p.Read(c, o); (err == nil) != contains(rule.Read, r) {
					t.Fatalf("Read(%s, %s) = %v against rule %v", c, r, err, rule.Read)
				}
				if err := p.Write(c, o); err != nil && !errors.Is(err, errs.ErrForbidden) {
					t.Fatalf("Write(%s, %s) = %v, not forbidden", c, r, err)
				}
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
