package serve_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/serve"
)

func TestParseDeployments(t *testing.T) {
	cases := []struct {
		name, src, errHas string
	}{
		{"good", `[{"model":"spam","canary":{"model":"spam@3","percent":10},"shadow":"spam-rebased@champion"},{"model":"chat","alias":"stable"}]`, ""},
		{"percent high", `[{"model":"spam","canary":{"model":"spam@v3","percent":120}}]`, `canary.percent`},
		{"percent zero", `[{"model":"spam","canary":{"model":"spam@v3","percent":0}}]`, `canary.percent`},
		{"percent hundred", `[{"model":"spam","canary":{"model":"spam@v3","percent":100}}]`, `canary.percent`},
		{"twice", `[{"model":"spam"},{"model":"spam","shadow":"spam@v2"}]`, `deployed twice`},
		{"model with alias", `[{"model":"spam@v1"}]`, `field "model"`},
		{"unknown field", `[{"model":"spam","weight":3}]`, `weight`},
		{"version as alias", `[{"model":"spam","alias":"v2"}]`, `field "alias"`},
		{"bad canary", `[{"model":"spam","canary":{"model":"spam@Bad Ref","percent":5}}]`, `canary.model`},
		{"bare canary", `[{"model":"spam","canary":{"model":"spam","percent":5}}]`, `names no version`},
		{"other model's canary", `[{"model":"spam","canary":{"model":"ham@v2","percent":5}}]`, `not a version of spam`},
		{"canary is primary", `[{"model":"spam","canary":{"model":"spam@champion","percent":5}}]`, `primary itself`},
		{"shadow is primary", `[{"model":"spam","alias":"stable","shadow":"spam@stable"}]`, `field "shadow"`},
		{"bare shadow", `[{"model":"spam","shadow":"ham"}]`, `field "shadow"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := serve.ParseDeployments([]byte(c.src))
			if c.errHas == "" {
				if err != nil || len(ds) != 2 || ds[0].Alias != "champion" || ds[0].Canary.Model != "spam@v3" || ds[1].Alias != "stable" {
					t.Fatalf("%+v, %v", ds, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("err %v, want it to mention %q", err, c.errHas)
			}
		})
	}
}

func FuzzParseDeployments(f *testing.F) {
	f.Add([]byte(`[{"model":"spam","canary":{"model":"spam@v3","percent":10}}]`))
	f.Add([]byte(`[{"model":"spam","alias":"stable","shadow":"spam@v2"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := serve.ParseDeployments(b)
		if err != nil {
			return
		}
		for _, d := range ds {
			again := d
			if err := again.Check(); err != nil || again.Primary() != d.Primary() || again.Shadow != d.Shadow {
				t.Fatalf("accepted deployment %+v fails Check or changes: %+v, %v", d, again, err)
			}
		}
	})
}

// FuzzRequestFields decodes arbitrary JSON as the request types: no panic,
// and the string-or-list fields come out consistent.
func FuzzRequestFields(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stop":"x"}`))
	f.Add([]byte(`{"model":"m","prompt":["a"],"stop":["x","y"],"max_tokens":3}`))
	f.Add([]byte(`{"model":"m","input":"hello"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c serve.ChatRequest
		if json.Unmarshal(b, &c) == nil {
			for _, m := range c.Messages {
				_ = string(m.Content)
			}
		}
		var p serve.CompletionRequest
		_ = json.Unmarshal(b, &p)
		var cl serve.ClassifyRequest
		if json.Unmarshal(b, &cl) == nil {
			for _, s := range cl.Input {
				_ = len(s)
			}
		}
	})
}
