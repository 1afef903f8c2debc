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
		{in: "smollm2-135m@v1", want: Selector{Name: "smollm2-135m", Ref: "v1", Kind: RefVersion}},
		{in: "tailor-tiny@3", want: Selector{Name: "tailor-tiny", Ref: "v3", Kind: RefVersion}},
		{in: "cafe12", want: Selector{Name: "cafe12", Kind: RefLatest}},
		{in: "m@abc", want: Selector{Name: "m", Ref: "abc", Kind: RefAlias}},
		{in: "", wantErr: `selector "": the name must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{in: "@v1", wantErr: `selector "@v1": the name must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{in: "tailor tiny", wantErr: `selector "tailor tiny": the name must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{in: "m@", wantErr: `selector "m@": nothing after '@'; write latest, v<N>, a content id (or its first 7+ hex digits) or an alias`},
		{in: "m@v0", wantErr: `selector "m@v0": version "v0": want v1, v2, … (numbers start at 1 and have at most 9 digits)`},
		{in: "m@a@b", wantErr: `selector "m@a@b": version "a@b": want latest, v<N>, a content id (or its first 7+ hex digits) or an alias`},
		{in: "m@Champion", wantErr: `selector "m@Champion": version "Champion": want latest, v<N>, a content id (or its first 7+ hex digits) or an alias`},
		{in: "a/b/c", wantErr: `selector "a/b/c": the name must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{in: "HuggingFaceTB/SmolLM2-135M@v1", wantErr: `selector "HuggingFaceTB/SmolLM2-135M@v1": the name must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`},
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
