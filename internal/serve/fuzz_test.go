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
		{"good", `[{"model":"spam","policy":{"kind":"canary","percent":10}},{"model":"chat","policy":{"kind":"all","alias":"v2"}}]`, ""},
		{"kind", `[{"model":"spam","policy":{"kind":"blue-green"}}]`, `deployments[0]`},
		{"percent", `[{"model":"spam","policy":{"kind":"canary","percent":120}}]`, `policy.percent`},
		{"twice", `[{"model":"spam","policy":{"kind":"all"}},{"model":"spam","policy":{"kind":"shadow"}}]`, `deployed twice`},
		{"model with alias", `[{"model":"spam@v1","policy":{"kind":"all"}}]`, `field "model"`},
		{"unknown field", `[{"model":"spam","policy":{"kind":"all"},"weight":3}]`, `weight`},
		{"bad challenger", `[{"model":"spam","policy":{"kind":"shadow","challenger":"Bad Alias"}}]`, `policy.challenger`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds, err := serve.ParseDeployments([]byte(c.src))
			if c.errHas == "" {
				if err != nil || len(ds) != 2 || ds[1].Policy.Alias != "v2" || ds[0].Policy.Challenger != "challenger" {
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
	f.Add([]byte(`[{"model":"spam","policy":{"kind":"canary","percent":10}}]`))
	f.Add([]byte(`[{"model":"spam","policy":{"kind":"shadow","champion":"v1","challenger":"v2"}}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := serve.ParseDeployments(b)
		if err != nil {
			return
		}
		for _, d := range ds {
			if err := d.Check(); err != nil {
				t.Fatalf("accepted deployment fails Check: %v", err)
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
