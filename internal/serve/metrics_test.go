package serve_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/serve"
)

// series returns the sample lines of a /metrics scrape.
func series(body []byte) []string {
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// unknownRequest sends one request for model through one of the three
// endpoints and the kinds of names a client can make up: a name nobody
// registered, a version of a real model that does not exist, a string that
// is no model address at all, and a refusal before routing (n=2).
func unknownRequest(t *testing.T, w *world, i int, model string) int {
	t.Helper()
	var path string
	var body map[string]any
	switch i % 4 {
	case 0:
		path, body = "/v1/classify", map[string]any{"model": model, "input": "x"}
	case 1:
		path, body = "/v1/chat/completions", map[string]any{"model": model, "max_tokens": 2, "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	case 2:
		path, body = "/v1/completions", map[string]any{"model": model, "max_tokens": 2, "prompt": "hi"}
	default:
		path, body = "/v1/chat/completions", map[string]any{"model": model, "n": 2, "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	}
	resp, _ := w.post(t, path, body)
	return resp.StatusCode
}

// madeUp matches any of the names unknownName makes.
var madeUp = regexp.MustCompile(`ghost-|no model|spam@v[0-9]{3}`)

func unknownName(i int) string {
	switch i % 3 {
	case 0:
		return fmt.Sprintf("ghost-%d", i)
	case 1:
		return fmt.Sprintf("spam@v%d", 100+i)
	}
	return fmt.Sprintf("no model %d/%d", i, i)
}

// TestMetricsUnknownModelsCollapse sends 1,000 distinct model names that
// route nowhere through the real HTTP server: /metrics has exactly the
// series it had before, every such request is counted under
// model="unknown", and no client-made name appears.
func TestMetricsUnknownModelsCollapse(t *testing.T) {
	w := newWorld(t, serve.Options{}, nil)
	if st, _, _, body := w.classify(t, "spam@v1", "hello"); st != 200 {
		t.Fatalf("classify: %d %s", st, body)
	}
	// One request of each kind first, so every (endpoint, status) pair
	// the loop produces has its series.
	for i := range 12 {
		if st := unknownRequest(t, w, i, unknownName(i)+"-warm"); st != 404 && st != 400 {
			t.Fatalf("warm-up %d: status %d", i, st)
		}
	}
	_, before := w.get(t, "/metrics")
	const n = 1000
	for i := range n {
		if st := unknownRequest(t, w, i, unknownName(i)); st != 404 && st != 400 {
			t.Fatalf("request %d (%q): status %d", i, unknownName(i), st)
		}
	}
	_, after := w.get(t, "/metrics")
	b, a := series(before), series(after)
	if len(a) != len(b) {
		t.Fatalf("/metrics grew from %d to %d series after %d unknown model names", len(b), len(a), n)
	}
	for _, line := range a {
		if madeUp.MatchString(line) {
			t.Fatalf("a client-made name reached /metrics: %s", line)
		}
	}
	var total int
	for _, line := range a {
		if strings.HasPrefix(line, "tailor_serve_requests_total{") && strings.Contains(line, `model="unknown"`) {
			var v int
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			total += v
		}
	}
	if total != n+12 {
		t.Fatalf(`requests_total{model="unknown"} sums to %d, want %d`, total, n+12)
	}
	if v := w.metricValue(t, `tailor_serve_requests_total{endpoint="classify",model="spam@v1",status="200"}`); v != "1" {
		t.Fatalf("a routed request keeps its model label: got %q, want 1", v)
	}
}
