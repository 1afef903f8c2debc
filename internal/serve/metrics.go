package serve

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// latencyBuckets are the request latency histogram's upper bounds, seconds.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts []int64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      int64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]int64, len(latencyBuckets)+1)
	}
	i, _ := slices.BinarySearch(latencyBuckets, v)
	h.counts[i]++
	h.sum += v
	h.n++
}

// UnknownModel is the model label of a request that named no model the
// server could route: a typo, a probe or a deleted model. The name comes
// from the client, so counting each one apart would let any client grow
// the label set without bound; the request log keeps the name as sent.
const UnknownModel = "unknown"

type reqKey struct{ endpoint, project, model, status string }
type modelStatus struct{ project, model, status string }

// projectModel is a model label within its project (Options.Scope).
type projectModel struct{ project, model string }

// metrics holds the server's counters; gauges are read at scrape time. It
// is written by hand in the Prometheus text exposition format 0.0.4.
type metrics struct {
	now func() time.Time
	// scoped adds a project label to every series with a model label
	// (Options.Scope is set).
	scoped bool

	mu       sync.Mutex
	requests map[reqKey]int64
	latency  map[modelStatus]*histogram
	genToks  map[projectModel]int64
	promptT  map[projectModel]int64
	rejected map[projectModel]int64
	shadow   map[string]int64 // outcome → count
	canary   map[string]int64 // "served" / "fallback"
	swaps    map[string]int64 // "ok" / "failed"
	window   [10]struct {
		sec int64
		n   int64
	}
}

func newMetrics(now func() time.Time) *metrics {
	return &metrics{now: now, requests: map[reqKey]int64{}, latency: map[modelStatus]*histogram{}, genToks: map[projectModel]int64{},
		promptT: map[projectModel]int64{}, rejected: map[projectModel]int64{}, shadow: map[string]int64{}, canary: map[string]int64{}, swaps: map[string]int64{}}
}

// request counts one answered request of project (the request's scope).
// model is the label route chose (routed.label), or UnknownModel when the
// request was refused before it routed to a model.
func (m *metrics) request(project, endpoint, model string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := fmt.Sprint(status)
	m.requests[reqKey{endpoint, project, model, st}]++
	h := m.latency[modelStatus{project, model, st}]
	if h == nil {
		h = &histogram{}
		m.latency[modelStatus{project, model, st}] = h
	}
	h.observe(d.Seconds())
	if status == 429 {
		m.rejected[projectModel{project, model}]++
	}
}

func (m *metrics) tokens(project, model string, prompt, generated int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.promptT[projectModel{project, model}] += int64(prompt)
	m.genToks[projectModel{project, model}] += int64(generated)
}

// modelLabels renders the project (when scoped) and model labels.
func (m *metrics) modelLabels(project, model string) string {
	if !m.scoped {
		return fmt.Sprintf("model=\"%s\"", esc(model))
	}
	return fmt.Sprintf("project=\"%s\",model=\"%s\"", esc(project), esc(model))
}

// generated counts tokens as the scheduler produces them, for tokens/s.
func (m *metrics) generated(n int) {
	sec := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &m.window[sec%int64(len(m.window))]
	if w.sec != sec {
		w.sec, w.n = sec, 0
	}
	w.n += int64(n)
}

func (m *metrics) tokensPerSecond() float64 {
	sec := m.now().Unix()
	var n int64
	for _, w := range m.window {
		if sec-w.sec < int64(len(m.window)) && w.sec <= sec {
			n += w.n
		}
	}
	return float64(n) / float64(len(m.window))
}

func (m *metrics) count(which map[string]int64, key string) {
	m.mu.Lock()
	which[key]++
	m.mu.Unlock()
}

// gauges are sampled at scrape time.
type gauges struct {
	queue, running map[string]int // per base
	engine         EngineStats
}

func esc(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func fnum(v float64) string { return fmt.Sprint(v) }

// write renders every metric.
func (m *metrics) write(w io.Writer, g gauges) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# HELP tailor_serve_requests_total Requests by endpoint, model and HTTP status.\n# TYPE tailor_serve_requests_total counter\n")
	for _, k := range slices.SortedFunc(maps.Keys(m.requests), func(a, b reqKey) int {
		return strings.Compare(a.endpoint+"\x00"+a.project+"\x00"+a.model+"\x00"+a.status, b.endpoint+"\x00"+b.project+"\x00"+b.model+"\x00"+b.status)
	}) {
		p("tailor_serve_requests_total{endpoint=\"%s\",%s,status=\"%s\"} %d\n", esc(k.endpoint), m.modelLabels(k.project, k.model), k.status, m.requests[k])
	}
	p("# HELP tailor_serve_request_duration_seconds Request latency by model and HTTP status.\n# TYPE tailor_serve_request_duration_seconds histogram\n")
	for _, k := range slices.SortedFunc(maps.Keys(m.latency), func(a, b modelStatus) int {
		return strings.Compare(a.project+"\x00"+a.model+"\x00"+a.status, b.project+"\x00"+b.model+"\x00"+b.status)
	}) {
		h, lbl := m.latency[k], fmt.Sprintf("%s,status=\"%s\"", m.modelLabels(k.project, k.model), k.status)
		var cum int64
		for i, b := range latencyBuckets {
			cum += h.counts[i]
			p("tailor_serve_request_duration_seconds_bucket{%s,le=\"%s\"} %d\n", lbl, fnum(b), cum)
		}
		p("tailor_serve_request_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", lbl, h.n)
		p("tailor_serve_request_duration_seconds_sum{%s} %s\ntailor_serve_request_duration_seconds_count{%s} %d\n", lbl, fnum(h.sum), lbl, h.n)
	}
	counter := func(name, help, label string, vals map[string]int64) {
		p("# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			p("%s{%s=\"%s\"} %d\n", name, label, esc(k), vals[k])
		}
	}
	byModel := func(name, help string, vals map[projectModel]int64) {
		p("# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		for _, k := range slices.SortedFunc(maps.Keys(vals), func(a, b projectModel) int {
			return strings.Compare(a.project+"\x00"+a.model, b.project+"\x00"+b.model)
		}) {
			p("%s{%s} %d\n", name, m.modelLabels(k.project, k.model), vals[k])
		}
	}
	byModel("tailor_serve_generated_tokens_total", "Completion tokens generated, by model.", m.genToks)
	byModel("tailor_serve_prompt_tokens_total", "Prompt and classify input tokens, by model.", m.promptT)
	byModel("tailor_serve_rejected_total", "Requests refused with 429 because the queue was full, by model.", m.rejected)
	counter("tailor_serve_shadow_requests_total", "Shadow (mirrored) requests by outcome.", "outcome", m.shadow)
	counter("tailor_serve_canary_requests_total", "Requests picked for a canary: served by it, or by the primary when it could not be resolved.", "outcome", m.canary)
	counter("tailor_serve_swaps_total", "Alias hot swaps by outcome.", "outcome", m.swaps)
	p("# HELP tailor_serve_tokens_per_second Tokens generated per second over the last 10 s.\n# TYPE tailor_serve_tokens_per_second gauge\ntailor_serve_tokens_per_second %s\n", fnum(m.tokensPerSecond()))
	gauge := func(name, help string, vals map[string]int) {
		p("# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			p("%s{base=\"%s\"} %d\n", name, esc(k), vals[k])
		}
	}
	gauge("tailor_serve_queue_depth", "Requests waiting for a batch slot, by base.", g.queue)
	gauge("tailor_serve_running_batch_size", "Sequences in the running generation batch, by base.", g.running)
	e := g.engine
	p("# HELP tailor_serve_loaded_adapters Adapters resident in memory.\n# TYPE tailor_serve_loaded_adapters gauge\ntailor_serve_loaded_adapters %d\n", len(e.Adapters))
	p("# HELP tailor_serve_adapter_bytes Bytes of each resident adapter.\n# TYPE tailor_serve_adapter_bytes gauge\n")
	for _, a := range e.Adapters {
		p("tailor_serve_adapter_bytes{adapter=\"%s\",base=\"%s\"} %d\n", esc(a.Digest), esc(a.Base), a.Bytes)
	}
	p("# HELP tailor_serve_adapter_bytes_total Bytes of all resident adapters.\n# TYPE tailor_serve_adapter_bytes_total gauge\ntailor_serve_adapter_bytes_total %d\n", e.AdapterBytes)
	p("# HELP tailor_serve_adapter_budget_bytes The adapter memory budget.\n# TYPE tailor_serve_adapter_budget_bytes gauge\ntailor_serve_adapter_budget_bytes %d\n", e.BudgetBytes)
	p("# HELP tailor_serve_base_bytes Bytes of resident base weights.\n# TYPE tailor_serve_base_bytes gauge\ntailor_serve_base_bytes %d\n", e.BaseBytes)
	p("# HELP tailor_serve_base_mapped_bytes Bytes of resident base weights used in place from memory-mapped files (page cache, not heap).\n# TYPE tailor_serve_base_mapped_bytes gauge\ntailor_serve_base_mapped_bytes %d\n", e.BaseMappedBytes)
	p("# HELP tailor_serve_adapter_loads_total Adapter loads, on demand included.\n# TYPE tailor_serve_adapter_loads_total counter\ntailor_serve_adapter_loads_total %d\n", e.Loads)
	p("# HELP tailor_serve_adapter_evictions_total Adapters evicted to stay under the budget.\n# TYPE tailor_serve_adapter_evictions_total counter\ntailor_serve_adapter_evictions_total %d\n", e.Evictions)
	p("# HELP tailor_serve_loaded_bases Bases resident in memory.\n# TYPE tailor_serve_loaded_bases gauge\ntailor_serve_loaded_bases %d\n", e.Bases)
	p("# HELP tailor_serve_base_budget_bytes The base memory budget (0: no bound).\n# TYPE tailor_serve_base_budget_bytes gauge\ntailor_serve_base_budget_bytes %d\n", e.BaseBudgetBytes)
	p("# HELP tailor_serve_base_loads_total Base loads, reloads after an eviction included.\n# TYPE tailor_serve_base_loads_total counter\ntailor_serve_base_loads_total %d\n", e.BaseLoads)
	p("# HELP tailor_serve_base_evictions_total Bases evicted to stay under the base budget.\n# TYPE tailor_serve_base_evictions_total counter\ntailor_serve_base_evictions_total %d\n", e.BaseEvictions)
	p("# HELP tailor_serve_kv_cache_bytes Bytes of the KV caches of generating sequences.\n# TYPE tailor_serve_kv_cache_bytes gauge\ntailor_serve_kv_cache_bytes %d\n", e.CacheBytes)
	p("# HELP tailor_serve_engine_resident_bytes Resident memory of the serving process (0: inference runs in the server).\n# TYPE tailor_serve_engine_resident_bytes gauge\ntailor_serve_engine_resident_bytes %d\n", e.ResidentBytes)
	p("# HELP tailor_serve_engine_restarts_total Restarts of the serving process after it died.\n# TYPE tailor_serve_engine_restarts_total counter\ntailor_serve_engine_restarts_total %d\n", e.Restarts)
}
