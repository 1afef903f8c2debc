package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"

	"github.com/tailor-ml/tailor/api"
)

const monitorYAML = `name: mail-watch
model: mail-lora
alias: champion
window:
  kind: count
  size: 30
feedback:
  every: 10
`

// labelled is one request text with its true label.
type labelled struct{ text, label string }

func corpusTexts(t *testing.T, from, to int) []labelled {
	t.Helper()
	var out []labelled
	for _, line := range strings.Split(strings.TrimSpace(tailortest.Corpus(from, to)), "\n") {
		var r struct{ Text, Label string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, labelled{r.Text, r.Label})
	}
	return out
}

// shifted is traffic the champion never saw: other words, longer texts.
func shifted(n int) []labelled {
	words := []string{"quantum", "flux", "nebula", "zircon", "gradient", "turbine", "sonata", "basalt", "lagoon", "orbit"}
	var out []labelled
	for i := range n {
		var b strings.Builder
		for j := range 12 {
			fmt.Fprintf(&b, "%s%d ", words[(i*7+j*3)%len(words)], (i+j)%5)
		}
		out = append(out, labelled{strings.TrimSpace(b.String()), "ham"})
	}
	return out
}

// classifyAll sends each text to the champion and returns the request ids.
func classifyAll(t *testing.T, srv *server, texts []labelled) []string {
	t.Helper()
	ids := make([]string, len(texts))
	for i, x := range texts {
		body, _ := json.Marshal(map[string]any{"model": "mail-lora", "input": x.text})
		hdr := post(t, srv, "/v1/classify", string(body), nil)
		ids[i] = hdr.Get("X-Tailor-Request-Id")
	}
	return ids
}

func waitMonitor(t *testing.T, srv *server, what string, ok func(api.MonitorStatus) bool) api.MonitorStatus {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		var m api.MonitorStatus
		srv.tailorJSON(&m, "monitor", "show", "mail-watch")
		if ok(m) {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("monitor: no %s within 3 minutes\n%s", what, srv.logs)
	return api.MonitorStatus{}
}

// adaptation watches the served champion: a monitor builds its reference
// in a profile run, in-distribution traffic passes, shifted traffic is
// flagged with its evidence, late labels accumulate into a feedback
// dataset whose record ids are the request ids, and a kill -9 loses no
// window.
func adaptation(t *testing.T, srv *server, work, dataDir string) *server {
	t.Helper()
	mfile := filepath.Join(work, "mail-watch.yaml")
	os.WriteFile(mfile, []byte(monitorYAML), 0o644)
	srv.tailor("monitor", "apply", mfile)
	var champ api.ModelVersion
	srv.tailorJSON(&champ, "model", "show", "mail-lora@champion")
	waitMonitor(t, srv, "reference profile", func(m api.MonitorStatus) bool { return m.Profile != "" && m.VersionID == champ.ID })

	var prof struct {
		Labels   []string `json:"labels"`
		Accuracy float64  `json:"accuracy"`
		Texts    int64    `json:"texts"`
	}
	get(t, srv, "/v1/monitors/mail-watch/profile", &prof)
	if len(prof.Labels) != 2 || prof.Texts == 0 {
		t.Fatalf("reference profile: %+v", prof)
	}

	normal := corpusTexts(t, 700, 760)
	normalIDs := classifyAll(t, srv, normal)
	classifyAll(t, srv, shifted(90))
	m := waitMonitor(t, srv, "5 windows", func(m api.MonitorStatus) bool { return m.Windows >= 5 })
	var ws []api.MonitorWindow
	srv.tailorJSON(&ws, "monitor", "windows", "mail-watch")
	if ws[0].Drifted || ws[1].Drifted {
		t.Errorf("in-distribution windows flagged: %s | %s", ws[0].Result, ws[1].Result)
	}
	if !ws[2].Drifted || !ws[3].Drifted || !ws[4].Drifted {
		t.Errorf("shifted windows not all flagged: %v %v %v\n%s", ws[2].Drifted, ws[3].Drifted, ws[4].Drifted, ws[3].Result)
	}
	if m.Drifted < 3 {
		t.Errorf("status counts %d drifted windows", m.Drifted)
	}
	// The drift event carries its evidence.
	out := srv.tailor("events", "--output", "json")
	var drift *api.Event
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		if e.Type == "monitor.drift.detected" && drift == nil {
			drift = &e
		}
	}
	if drift == nil {
		t.Fatal("no monitor.drift.detected event")
	}
	var ev struct {
		Model     string  `json:"model"`
		Window    int64   `json:"window"`
		Severity  float64 `json:"severity"`
		Detectors []struct {
			Name      string   `json:"name"`
			Statistic float64  `json:"statistic"`
			Threshold float64  `json:"threshold"`
			PValue    *float64 `json:"pvalue"`
		} `json:"detectors"`
	}
	if err := json.Unmarshal(drift.Data, &ev); err != nil || ev.Model != "mail-lora" || ev.Severity <= 0 || len(ev.Detectors) == 0 {
		t.Fatalf("drift evidence: %v %s", err, drift.Data)
	}

	// Late labels: the tenth makes a feedback dataset version.
	var last api.FeedbackResult
	for i := range 10 {
		srv.tailorJSON(&last, "feedback", "send", normalIDs[i], "--label", normal[i].label)
	}
	if last.Accumulated == nil || last.Accumulated.Name != "mail-lora-feedback" || last.Accumulated.Records != 10 {
		t.Fatalf("tenth label did not accumulate: %+v", last)
	}
	var again api.FeedbackResult
	srv.tailorJSON(&again, "feedback", "send", normalIDs[0], "--label", normal[0].label)
	if again.Created {
		t.Error("the same feedback twice was recorded twice")
	}
	other := "spam"
	if normal[0].label == "spam" {
		other = "ham"
	}
	if _, stderr, code := srv.tailorCode("feedback", "send", normalIDs[0], "--label", other); code != 5 || !strings.Contains(stderr, "already has feedback") {
		t.Errorf("conflicting feedback: exit %d %s", code, stderr)
	}
	var recs []struct{ ID, Text, Label string }
	for _, line := range strings.Split(strings.TrimSpace(srv.tailor("dataset", "export", "mail-lora-feedback")), "\n") {
		var r struct{ ID, Text, Label string }
		json.Unmarshal([]byte(line), &r)
		recs = append(recs, r)
	}
	for i := range 10 {
		found := slices.ContainsFunc(recs, func(r struct{ ID, Text, Label string }) bool {
			return r.ID == normalIDs[i] && r.Text == normal[i].text && r.Label == normal[i].label
		})
		if !found {
			t.Errorf("feedback dataset lacks request %s: %+v", normalIDs[i], recs)
		}
	}
	srv.tailorJSON(&ws, "monitor", "windows", "mail-watch")
	if ws[0].Labelled == 0 || ws[0].RealisedAccuracy == nil {
		t.Errorf("window 0 has no realised accuracy after its labels: %+v", ws[0])
	}

	// kill -9: the windows and the open window survive.
	before := len(ws)
	srv.kill()
	srv = startServer(t, dataDir)
	classifyAll(t, srv, corpusTexts(t, 760, 790))
	waitMonitor(t, srv, "a window after the restart", func(m api.MonitorStatus) bool { return m.Windows == before+1 })
	return srv
}
