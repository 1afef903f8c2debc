package adapter

import "testing"

func TestBadAdapterManifest(t *testing.T) {
	cases := []struct{ name, src string }{
		{"not json", "{"},
		{"format", `{"format":"gguf","files":[{"name":"a","digest":"sha256:00","size":1}]}`},
		{"no files", `{"format":"peft-lora","files":[]}`},
		{"bad name", `{"format":"peft-lora","files":[{"name":"../x","digest":"d","size":1}]}`},
		{"one label", `{"format":"peft-lora","labels":["a"],"files":[{"name":"a","digest":"d","size":1}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseManifest([]byte(c.src)); err == nil {
				t.Fatalf("accepted %s", c.src)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":"peft-lora","task":"classify","labels":["a","b"],"files":[{"name":"adapter_config.json","digest":"sha256:00","size":3}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		am, err := ParseManifest(b)
		if err == nil && (am.Format != "peft-lora" || len(am.Files) == 0) {
			t.Fatalf("accepted %q", b)
		}
	})
}
