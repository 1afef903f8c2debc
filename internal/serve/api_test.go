package serve_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/serve"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		os.RemoveAll(fix.Dir)
	}
	os.Exit(code)
}

type chatResp struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Message      struct{ Role, Content string } `json:"message"`
		Text         string                         `json:"text"`
		Delta        struct{ Role, Content string } `json:"delta"`
		FinishReason *string                        `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// sse splits a text/event-stream body into its data payloads.
func sse(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		} else if sc.Text() != "" {
			t.Fatalf("unexpected SSE line %q", sc.Text())
		}
	}
	return out
}

func TestChatCompletion(t *testing.T) {
	w := newWorld(t, serve.Options{}, nil)
	req := map[string]any{"model": "chat", "messages": []map[string]any{{"role": "user", "content": "hello, how are you?"}},
		"max_tokens": 12, "temperature": 0}
	resp, body := w.post(t, "/v1/chat/completions", req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var whole chatResp
	must(t, json.Unmarshal(body, &whole))
	c := whole.Choices[0]
	if whole.Object != "chat.completion" || c.Message.Role != "assistant" || c.FinishReason == nil || whole.Usage == nil ||
		whole.Usage.CompletionTokens < 1 || whole.Usage.CompletionTokens > 12 || whole.Usage.TotalTokens != whole.Usage.PromptTokens+whole.Usage.CompletionTokens {
		t.Fatalf("response %s", body)
	}
	if v := resp.Header.Get("X-Tailor-Model-Version"); v != "chat@v1" {
		t.Fatalf("version header %q", v)
	}
	// Streamed, greedy: the same text in pieces, then finish, then [DONE].
	req["stream"] = true
	req["stream_options"] = map[string]any{"include_usage": true}
	resp, body = w.post(t, "/v1/chat/completions", req)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := sse(t, body)
	if events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %v", events)
	}
	var text strings.Builder
	var finish string
	var usageSeen bool
	for i, e := range events[:len(events)-1] {
		var ch chatResp
		must(t, json.Unmarshal([]byte(e), &ch))
		if ch.Object != "chat.completion.chunk" {
			t.Fatalf("event %d: %s", i, e)
		}
		if len(ch.Choices) == 0 {
			usageSeen = ch.Usage != nil && ch.Usage.CompletionTokens == whole.Usage.CompletionTokens
			continue
		}
		text.WriteString(ch.Choices[0].Delta.Content)
		if ch.Choices[0].FinishReason != nil {
			finish = *ch.Choices[0].FinishReason
		}
	}
	if text.String() != c.Message.Content || finish != *c.FinishReason || !usageSeen {
		t.Fatalf("stream text %q finish %q usage %v; whole %q %q", text.String(), finish, usageSeen, c.Message.Content, *c.FinishReason)
	}
}

func TestCompletionAndStop(t *testing.T) {
	w := newWorld(t, serve.Options{}, nil)
	base := map[string]any{"model": "tiny", "prompt": "the quick brown", "max_tokens": 20, "temperature": 0}
	resp, body := w.post(t, "/v1/completions", base)
	var full chatResp
	must(t, json.Unmarshal(body, &full))
	if resp.StatusCode != 200 || full.Object != "text_completion" || resp.Header.Get("X-Tailor-Model-Version") != "tiny@v1" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	text := full.Choices[0].Text
	// A stop sequence taken from the greedy text (an ASCII letter after the
	// first character) cuts it at its first occurrence.
	stop := ""
	for i, r := range text {
		if i > 0 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			stop = string(r)
			break
		}
	}
	if stop == "" {
		t.Fatalf("greedy completion %q has no ASCII letter to stop at; change the prompt", text)
	}
	base["stop"] = stop
	_, body = w.post(t, "/v1/completions", base)
	var cut chatResp
	must(t, json.Unmarshal(body, &cut))
	want := text[:strings.Index(text, stop)]
	if cut.Choices[0].Text != want || *cut.Choices[0].FinishReason != "stop" {
		t.Fatalf("stop %q: got %q (%s), want %q", stop, cut.Choices[0].Text, *cut.Choices[0].FinishReason, want)
	}
	// Seeded sampling is reproducible.
	delete(base, "stop")
	base["temperature"], base["seed"], base["top_k"], base["top_p"] = 1.2, 42, 40, 0.9
	_, a := w.post(t, "/v1/completions", base)
	_, b := w.post(t, "/v1/completions", base)
	var ra, rb chatResp
	must(t, json.Unmarshal(a, &ra))
	must(t, json.Unmarshal(b, &rb))
	if ra.Choices[0].Text != rb.Choices[0].Text {
		t.Fatalf("seeded sampling differs: %q vs %q", ra.Choices[0].Text, rb.Choices[0].Text)
	}
}

func TestModelsAndUnknownModel(t *testing.T) {
	w := newWorld(t, serve.Options{}, nil)
	_, body := w.get(t, "/v1/models")
	var list struct {
		Object string `json:"object"`
		Data   []struct{ ID, Object string }
	}
	must(t, json.Unmarshal(body, &list))
	var ids []string
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	want := "chat chat@champion chat@v1 short short@v1 spam spam@challenger spam@champion spam@v1 spam@v2 tiny"
	if strings.Join(ids, " ") != want || list.Object != "list" {
		t.Fatalf("models %v, want %s", ids, want)
	}
	resp, body := w.get(t, "/v1/models/spam@v2")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"spam@v2"`) {
		t.Fatalf("get model: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/v1/models/nope", "/v1/models/spam@v9"} {
		if resp, body := w.get(t, path); resp.StatusCode != 404 || !strings.Contains(string(body), "model_not_found") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	for _, m := range []string{"nope", "spam@v9", "spam@nosuch", "BAD NAME"} {
		resp, body := w.post(t, "/v1/chat/completions", map[string]any{"model": m, "messages": []map[string]string{{"role": "user", "content": "hi"}}})
		var e struct {
			Error struct{ Message, Type, Param, Code string } `json:"error"`
		}
		must(t, json.Unmarshal(body, &e))
		if resp.StatusCode != 404 || e.Error.Type != "invalid_request_error" || e.Error.Param != "model" || e.Error.Code != "model_not_found" || e.Error.Message == "" {
			t.Fatalf("model %q: %d %s", m, resp.StatusCode, body)
		}
	}
}

func TestValidation(t *testing.T) {
	w := newWorld(t, serve.Options{MaxBodyBytes: 4096, MaxTokens: 64, MaxInputs: 3}, nil)
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name, path, body, param, code string
	}{
		{"max_tokens zero", "/v1/chat/completions", `{"model":"chat",` + msgs + `,"max_tokens":0}`, "max_tokens", "invalid_value"},
		{"max_tokens over limit", "/v1/chat/completions", `{"model":"chat",` + msgs + `,"max_tokens":65}`, "max_tokens", "invalid_value"},
		{"max_completion_tokens", "/v1/chat/completions", `{"model":"chat",` + msgs + `,"max_completion_tokens":-1}`, "max_completion_tokens", "invalid_value"},
		{"temperature", "/v1/chat/completions", `{"model":"chat",` + msgs + `,"temperature":2.5}`, "temperature", "invalid_value"},
		{"top_p", "/v1/completions", `{"model":"chat","prompt":"a","top_p":0}`, "top_p", "invalid_value"},
		{"n", "/v1/chat/completions", `{"model":"chat",` + msgs + `,"n":2}`, "n", "unsupported_value"},
		{"stop type", "/v1/chat/completions", `{"model":"chat",` + msgs + `,"stop":5}`, "", "invalid_json"},
		{"stop count", "/v1/completions", `{"model":"chat","prompt":"a","stop":["a","b","c","d","e"]}`, "stop", "invalid_value"},
		{"no model", "/v1/chat/completions", `{` + msgs + `}`, "model", "missing_required_parameter"},
		{"no messages", "/v1/chat/completions", `{"model":"chat","messages":[]}`, "messages", "invalid_value"},
		{"bad role", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role", "invalid_value"},
		{"bad json", "/v1/chat/completions", `{"model":`, "", "invalid_json"},
		{"body too large", "/v1/completions", `{"model":"chat","prompt":"` + strings.Repeat("a", 5000) + `"}`, "", "request_too_large"},
		{"two prompts", "/v1/completions", `{"model":"chat","prompt":["a","b"]}`, "prompt", "invalid_value"},
		{"logprobs", "/v1/completions", `{"model":"chat","prompt":"a","logprobs":3}`, "logprobs", "unsupported_value"},
		{"chat on classifier", "/v1/chat/completions", `{"model":"spam",` + msgs + `}`, "model", "model_not_supported"},
		{"classify on generator", "/v1/classify", `{"model":"chat","input":"hi"}`, "model", "model_not_supported"},
		{"classify no input", "/v1/classify", `{"model":"spam","input":[]}`, "input", "invalid_value"},
		{"classify too many", "/v1/classify", `{"model":"spam","input":["a","b","c","d"]}`, "input", "invalid_value"},
		{"classify input type", "/v1/classify", `{"model":"spam","input":{"a":1}}`, "", "invalid_json"},
		{"context length", "/v1/completions", `{"model":"tiny","prompt":"` + strings.Repeat("zq ", 300) + `"}`, "messages", "context_length_exceeded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := w.post(t, c.path, c.body)
			var e struct {
				Error struct {
					Message, Type string
					Param, Code   *string
				} `json:"error"`
			}
			must(t, json.Unmarshal(body, &e))
			if resp.StatusCode != 400 || e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			if param := deref(e.Error.Param); param != c.param || deref(e.Error.Code) != c.code {
				t.Fatalf("param %q code %q, want %q %q: %s", param, deref(e.Error.Code), c.param, c.code, body)
			}
		})
	}
	// Stop given as a string works.
	resp, body := w.post(t, "/v1/completions", `{"model":"tiny","prompt":"the","max_tokens":3,"stop":"zzz"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("stop string: %d %s", resp.StatusCode, body)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestClassifyTruncatesAsTraining: an input longer than the model was
// trained on is cut to the same first tokens training kept (the adapter
// manifest's max_seq_len, else the base's positions), unless the request
// asks for strictness.
func TestClassifyTruncatesAsTraining(t *testing.T) {
	w := newWorld(t, serve.Options{}, nil)
	long := strings.Repeat("zq ", 300)
	type result struct {
		Data []struct {
			Label         string
			Probabilities map[string]float64
			Truncated     bool
		}
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	classify := func(t *testing.T, body string) result {
		t.Helper()
		resp, raw := w.post(t, "/v1/classify", body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		var r result
		must(t, json.Unmarshal(raw, &r))
		return r
	}
	tok := w.f.Tok
	cases := []struct {
		name, model string
		limit       int
	}{
		{"adapter max_seq_len", "short", 8},
		{"base positions", "spam", w.f.Config.MaxPositions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			full := tok.Encode(long, true)
			if len(full) <= c.limit {
				t.Fatalf("input has %d tokens, not over %d", len(full), c.limit)
			}
			got := classify(t, fmt.Sprintf(`{"model":%q,"input":%q}`, c.model, long))
			if !got.Data[0].Truncated || got.Usage.PromptTokens != c.limit {
				t.Fatalf("truncated=%v prompt_tokens=%d, want true and %d", got.Data[0].Truncated, got.Usage.PromptTokens, c.limit)
			}
			// The answer is the model's answer on the kept prefix.
			prefix := tok.Decode(full[:c.limit], true)
			if !slices.Equal(tok.Encode(prefix, true), full[:c.limit]) {
				t.Fatalf("fixture: the decoded prefix %q does not re-encode to the same tokens", prefix)
			}
			same := classify(t, fmt.Sprintf(`{"model":%q,"input":%q}`, c.model, prefix))
			if same.Data[0].Truncated || same.Data[0].Label != got.Data[0].Label ||
				!reflect.DeepEqual(same.Data[0].Probabilities, got.Data[0].Probabilities) {
				t.Errorf("truncated input %+v differs from its prefix %+v", got.Data[0], same.Data[0])
			}
			resp, raw := w.post(t, "/v1/classify", fmt.Sprintf(`{"model":%q,"input":%q,"truncate":false}`, c.model, long))
			if resp.StatusCode != 400 || !strings.Contains(string(raw), "context_length_exceeded") {
				t.Fatalf("strict request: %d %s, want 400 context_length_exceeded", resp.StatusCode, raw)
			}
		})
	}
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu  sync.Mutex
	obs []serve.Observation
}

func (r *recorder) Observe(o serve.Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
}

// TestObserverSeesEveryClassification: the observer gets one observation
// per answered input, with the answer, and input ids feedback can name.
func TestObserverSeesEveryClassification(t *testing.T) {
	rec := &recorder{}
	w := newWorld(t, serve.Options{Observer: rec}, nil)
	resp, raw := w.post(t, "/v1/classify", `{"model":"spam","input":["win money now","lunch at noon"]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	var got struct {
		Data []struct {
			Label         string
			Probabilities map[string]float64
		}
	}
	must(t, json.Unmarshal(raw, &got))
	id := resp.Header.Get("X-Tailor-Request-Id")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.obs) != 2 {
		t.Fatalf("%d observations, want 2", len(rec.obs))
	}
	for i, o := range rec.obs {
		want := id
		if i > 0 {
			want = fmt.Sprintf("%s#%d", id, i)
		}
		if o.RequestID != want || o.Model != "spam" || o.Variant != "primary" || o.Label != got.Data[i].Label || o.Input == "" {
			t.Errorf("observation %d: %+v, want id %s and label %s", i, o, want, got.Data[i].Label)
		}
		for k, name := range o.Labels {
			if o.Probs[k] != got.Data[i].Probabilities[name] {
				t.Errorf("observation %d: p(%s) %v, answered %v", i, name, o.Probs[k], got.Data[i].Probabilities[name])
			}
		}
	}
}

// TestMeterSeesEveryRequest: the meter hook gets one record per request,
// with its tokens and the model it resolved to; a name that resolves to
// nothing gives no model, so metering cannot grow with client text.
func TestMeterSeesEveryRequest(t *testing.T) {
	var mu sync.Mutex
	var got []serve.Usage
	w := newWorld(t, serve.Options{Meter: func(u serve.Usage) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, u)
	}, MeterTag: func(r *http.Request) string { return r.Header.Get("X-Test-Project") }}, nil)
	resp, raw := w.post(t, "/v1/classify", `{"model":"spam","input":["win money now"]}`, "X-Test-Project", "team-a")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	var body struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	must(t, json.Unmarshal(raw, &body))
	if resp, raw := w.post(t, "/v1/classify", `{"model":"no-such-model-1234","input":["x"]}`); resp.StatusCode != 404 {
		t.Fatalf("unknown model: %d %s", resp.StatusCode, raw)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d usage records, want 2: %+v", len(got), got)
	}
	if u := got[0]; u.Model != "spam" || u.Endpoint != "classify" || u.Status != 200 || u.TokensIn != body.Usage.PromptTokens || u.TokensIn == 0 ||
		u.Variant != "primary" || u.Latency < 0 || u.Tag != "team-a" {
		t.Errorf("classify usage %+v (answered %d prompt tokens)", u, body.Usage.PromptTokens)
	}
	if u := got[1]; u.Model != "" || u.Status != 404 {
		t.Errorf("unknown model usage %+v, want no model", u)
	}
}
