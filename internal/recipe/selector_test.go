package recipe

import (
	"errors"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in      string
		want    Selector
		wantErr string
	}{
		{in: "tailor-tiny", want: Selector{Name: "tailor-tiny", Kind: RefLatest}},
		{in: "tailor-tiny@latest", want: Selector{Name: "tailor-tiny", Kind: RefLatest}},
		{in: "tailor-tiny@v3", want: Selector{Name: "tailor-tiny", Ref: "v3", Kind: RefVersion}},
		{in: "tailor-tiny@3fa9c1e", want: Selector{Name: "tailor-tiny", Ref: "3fa9c1e", Kind: RefID}},
		{in: "tailor-tiny@champion", want: Selector{Name: "tailor-tiny", Ref: "champion", Kind: RefAlias}},
		{in: "HuggingFaceTB/SmolLM2-135M@v1", want: Selector{Name: "HuggingFaceTB/SmolLM2-135M", Ref: "v1", Kind: RefVersion}},
		{in: "cafe12", want: Selector{Name: "cafe12", Kind: RefLatest}},
		{in: "m@abc", want: Selector{Name: "m", Ref: "abc", Kind: RefAlias}},
		{in: "", wantErr: `invalid selector "": the name must start with a letter or digit and use only letters, digits, '.', '_', '-' (and at most one '/')`},
		{in: "@v1", wantErr: `invalid selector "@v1": the name must start with a letter or digit and use only letters, digits, '.', '_', '-' (and at most one '/')`},
		{in: "tailor tiny", wantErr: `invalid selector "tailor tiny": the name must start with a letter or digit and use only letters, digits, '.', '_', '-' (and at most one '/')`},
		{in: "m@", wantErr: `invalid selector "m@": nothing after '@' (write name, name@v3, name@<id prefix> or name@alias)`},
		{in: "m@v0", wantErr: `invalid selector "m@v0": versions are v1, v2, … (at most 9 digits)`},
		{in: "m@a@b", wantErr: `invalid selector "m@a@b": "a@b" is not a version (v3), an id prefix (7+ hex digits) or an alias (lowercase word like champion)`},
		{in: "m@Champion", wantErr: `invalid selector "m@Champion": "Champion" is not a version (v3), an id prefix (7+ hex digits) or an alias (lowercase word like champion)`},
		{in: "a/b/c", wantErr: `invalid selector "a/b/c": the name must start with a letter or digit and use only letters, digits, '.', '_', '-' (and at most one '/')`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSelector(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("got %+v, %v; want error %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			again, err := ParseSelector(got.String())
			if err != nil || again != got {
				t.Errorf("String() %q does not round-trip: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestSplitDatasetRef(t *testing.T) {
	for _, tc := range []struct{ in, name, version string }{
		{"spam", "spam", "latest"}, {"spam@v3", "spam", "v3"}, {"spam@3fa9c1e", "spam", "3fa9c1e"},
	} {
		if n, v := SplitDatasetRef(tc.in); n != tc.name || v != tc.version {
			t.Errorf("SplitDatasetRef(%q) = %q, %q; want %q, %q", tc.in, n, v, tc.name, tc.version)
		}
	}
}
