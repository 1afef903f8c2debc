package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/serve/reqlog"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
	"github.com/tailor-ml/tailor/internal/store"
)

// deployWorld is a real App (real SQLite, in-process serving) on a data
// directory holding a tiny base "tiny" and three classifier versions of
// "spam" (v1 champion; v2 with a failing eval report; v3 with a passing
// one), behind a loopback server with the control and inference routes.
type deployWorld struct {
	serverWorld
	dir    string
	auth   *auth.Authority
	client *api.Client // acts as "tester", admin in the default project
	token  string      // the tester's
}

// newDeployData writes the models into dir and registers them.
func newDeployData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	f, err := servetest.New(dir, servetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := openDeployWorld(t, dir)
	defer w.close()
	ctx := context.Background()
	st := w.app.Store()
	if _, _, err := st.PutBaseVersion(ctx, store.BaseVersion{ID: f.Base.BaseID, Name: "tiny", Arch: "LlamaForCausalLM",
		Manifest: f.Base.BaseManifest, Region: "local", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	for i, verdict := range []store.Verdict{"", store.VerdictFail, store.VerdictPass} {
		cls, err := f.Classifier(uint64(i+1), []string{"ham", "spam"})
		if err != nil {
			t.Fatal(err)
		}
		id := registry.ContentID(f.Base.BaseID, cls.Adapter)
		if _, _, err := st.PutModelVersion(ctx, store.ModelVersion{ID: id, Name: "spam", BaseID: f.Base.BaseID, Adapter: cls.Adapter,
			Task: "classify", CreatedAt: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
		if verdict != "" {
			rep := store.EvalReport{ModelVersionID: id, Digest: fmt.Sprintf("sha256:report-%d", i+1), DatasetID: "eval-set", Split: "test", Verdict: verdict}
			if verdict == store.VerdictFail {
				rep.Failed = []string{"accuracy 0.41 < 0.80"}
			}
			if _, _, err := st.PutEvalReport(ctx, rep, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := w.client.Promote(ctx, "spam", api.Promote{Version: "v1", Alias: "champion", Reason: "first", Actor: "test",
		Override: true, OverrideReason: "no eval report in this fixture"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openDeployWorld opens and starts an App on dir.
func openDeployWorld(t *testing.T, dir string, opts ...func(*app.Options)) *deployWorld {
	t.Helper()
	o := app.Options{DataDir: dir, EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}}
	for _, f := range opts {
		f(&o)
	}
	a, err := app.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	authority := a.Authority(auth.Options{Rate: -1}) // 1000 classify requests in a burst
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: authority, Service: a, Inference: a.Inference()}))
	w := &deployWorld{serverWorld: serverWorld{t: t, app: a, srv: srv, cancel: cancel}, dir: dir, auth: authority}
	t.Cleanup(w.close)
	tester := w.admin("tester")
	t.Setenv("TAILOR_TOKEN", tester)
	empty := filepath.Join(t.TempDir(), "config") // no project from the user's own config
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAILOR_CONFIG", empty)
	w.client, w.token = api.NewClient(srv.URL, nil).WithToken(tester), tester
	return w
}

// admin mints a token for principal, admin in the default project, as
// an admin "root" would.
func (w *deployWorld) admin(principal string) string {
	w.t.Helper()
	token, err := adminToken(w.auth, principal)
	if err != nil {
		w.t.Fatal(err)
	}
	return token
}

// adminToken mints a token for principal, admin in the default project, as
// an admin "root" would (the change is audited as root's).
func adminToken(a *auth.Authority, principal string) (string, error) {
	admin := map[string]auth.Role{store.DefaultProject: auth.Admin}
	root := auth.Principal{Name: "root", Project: store.DefaultProject, Roles: admin}
	c, err := a.CreateToken(store.WithActor(context.Background(), "root"), root,
		auth.NewToken{Principal: principal, Project: store.DefaultProject, Roles: admin})
	return c.Secret.String(), err
}

// classify sends one request for model with a user key and returns the
// request id and the version that answered.
func (w *deployWorld) classify(model, input, user string) (string, string) {
	w.t.Helper()
	body, _ := json.Marshal(map[string]any{"model": model, "input": input, "user": user})
	req, err := http.NewRequest("POST", w.srv.URL+"/v1/classify", bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+os.Getenv("TAILOR_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		w.t.Fatalf("classify %s: %d %s", model, resp.StatusCode, b.String())
	}
	return resp.Header.Get("X-Tailor-Request-Id"), resp.Header.Get("X-Tailor-Model-Version")
}

// records reads the request log.
func (w *deployWorld) records() []reqlog.Record {
	w.t.Helper()
	var out []reqlog.Record
	if _, err := (&reqlog.Reader{Dir: filepath.Join(w.dir, "requests")}).ReadFrom(1, func(r reqlog.Record) bool {
		out = append(out, r)
		return true
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// waitShadows waits until every request id in ids has a shadow record.
func (w *deployWorld) waitShadows(ids []string) []reqlog.Record {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs := w.records()
		shadowed := map[string]bool{}
		for _, r := range recs {
			if r.Variant == "shadow" {
				shadowed[r.RequestID] = true
			}
		}
		missing := 0
		for _, id := range ids {
			if !shadowed[id] {
				missing++
			}
		}
		if missing == 0 {
			return recs
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%d of %d requests have no shadow record", missing, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// canaryByRule is docs/serving.md's rule for a request with a user key.
func canaryByRule(model, user string, percent float64) bool {
	h := sha256.Sum256([]byte(model + "\x00" + user))
	return float64(binary.BigEndian.Uint64(h[:8])%10000) < percent*100
}

var deployInputs = []string{"win a free prize now", "lunch tomorrow?", "cheap pills online, act now", "please call me back",
	"your invoice is attached", "congratulations you have been selected for a cash reward"}

// A 10 % canary and a shadow through the real server and the CLI: the
// canary share, stickiness per user key, a shadow record beside every
// answer, `deploy compare` against numbers computed here from the request
// log and the feedback, and `deploy history` with each version's event.
func TestDeployCanaryAndShadow(t *testing.T) {
	w := openDeployWorld(t, newDeployData(t))
	ctx := context.Background()

	out := w.mustCLI("deploy", "spam", "--alias", "champion", "--canary", "spam@v2:10", "--shadow", "spam@v3", "--reason", "try v2")
	for _, want := range []string{"deployment spam v1: set", "spam@champion → spam@v1  90 %", "spam@v2 → spam@v2  10 %", "spam@v3 → spam@v3"} {
		if !strings.Contains(out, want) {
			t.Fatalf("deploy output lacks %q:\n%s", want, out)
		}
	}
	if out := w.mustCLI("deploy", "spam", "--canary", "spam@v2:10", "--shadow", "spam@v3"); !strings.Contains(out, "deployment spam v1: unchanged") {
		t.Fatalf("the same deployment again:\n%s", out)
	}

	// 1000 requests, each with its own user key.
	const n = 1000
	answers := make([]deployAnswer, n)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				user := fmt.Sprintf("user-%04d", i)
				id, v := w.classify("spam", deployInputs[i%len(deployInputs)], user)
				answers[i] = deployAnswer{id, v, user}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	canaries := 0
	for _, a := range answers {
		want := "spam@v1"
		if canaryByRule("spam", a.user, 10) {
			want = "spam@v2"
			canaries++
		}
		if a.version != want {
			t.Fatalf("user %s answered by %s, want %s by the documented rule", a.user, a.version, want)
		}
	}
	// Binomial(1000, 0.1): sd 9.5; four of them either side.
	if math.Abs(float64(canaries)-100) > 4*math.Sqrt(n*0.1*0.9) {
		t.Fatalf("canary answered %d of %d, want 100 ± 38", canaries, n)
	}
	// Sticky: the same user key, the same variant.
	for _, a := range answers[:60] {
		for range 2 {
			if _, v := w.classify("spam", "another message", a.user); v != a.version {
				t.Fatalf("user %s got %s, then %s", a.user, a.version, v)
			}
		}
	}
	// A request naming a version bypasses the deployment.
	if _, v := w.classify("spam@v3", "hello", "user-0001"); v != "spam@v3" {
		t.Fatalf("spam@v3 answered by %s", v)
	}

	// Feedback on 200 requests.
	for i, a := range answers[:200] {
		label := "ham"
		if i%3 == 0 {
			label = "spam"
		}
		if _, err := w.client.PostFeedback(ctx, api.Feedback{RequestID: a.id, Label: label}); err != nil {
			t.Fatalf("feedback %d: %v", i, err)
		}
	}

	// Every answer has a shadow record with the same request id.
	ids := make([]string, 0, n+120)
	for _, a := range answers {
		ids = append(ids, a.id)
	}
	recs := w.waitShadows(ids)
	byID := map[string]map[string]reqlog.Record{}
	for _, r := range recs {
		if r.Model != "spam" {
			continue
		}
		if byID[r.RequestID] == nil {
			byID[r.RequestID] = map[string]reqlog.Record{}
		}
		if _, dup := byID[r.RequestID][r.Variant]; dup {
			t.Fatalf("request %s has two %s records", r.RequestID, r.Variant)
		}
		byID[r.RequestID][r.Variant] = r
	}
	for _, a := range answers {
		rs := byID[a.id]
		served := "primary"
		if a.version == "spam@v2" {
			served = "canary"
		}
		if rs[served].Version != a.version || rs["shadow"].Version != "spam@v3" || rs["shadow"].Input != rs[served].Input || rs["shadow"].Status != 200 {
			t.Fatalf("request %s: records %+v", a.id, rs)
		}
	}

	// deploy compare, against the request log and the feedback read here.
	fb := map[string]string{}
	for i, a := range answers[:200] {
		fb[a.id] = map[bool]string{true: "spam", false: "ham"}[i%3 == 0]
	}
	want := independentComparison(recs, fb)
	code, jsonOut, errOut := w.cli("deploy", "compare", "spam", "--output", "json")
	if code != ExitOK {
		t.Fatalf("deploy compare: %d %s", code, errOut)
	}
	var got api.DeploymentComparison
	if err := json.Unmarshal([]byte(jsonOut), &got); err != nil {
		t.Fatal(err)
	}
	if got.Canary == nil || got.Shadow == nil || got.Version != 1 {
		t.Fatalf("compare: %s", jsonOut)
	}
	for name, pair := range map[string][2]api.VariantComparison{"canary": {*got.Canary, want.canary}, "shadow": {*got.Shadow, want.shadow}} {
		g, e := pair[0], pair[1]
		if !sameStats(g.Primary, e.Primary) || !sameStats(g.Other, e.Other) || g.Paired != e.Paired || g.Agreed != e.Agreed || !sameRate(g.Agreement, e.Agreement) {
			t.Errorf("compare %s:\n got  %s\n want %s", name, jsonText(g), jsonText(e))
		}
	}
	if got.Canary.Other.Requests != canaries+countCanaries(answers[:60], 2) || got.Shadow.Other.Requests != got.Shadow.Primary.Requests ||
		got.Shadow.Paired == 0 || got.Canary.Other.Labelled == 0 || got.Shadow.Primary.Labelled == 0 {
		t.Errorf("compare counts look wrong: %s", jsonOut)
	}
	text := w.mustCLI("deploy", "compare", "spam")
	for _, want := range []string{"primary vs canary", "primary vs shadow", "agreement n/a", fmt.Sprintf("(%d of %d requests both answered)", got.Shadow.Agreed, got.Shadow.Paired)} {
		if !strings.Contains(text, want) {
			t.Errorf("compare text lacks %q:\n%s", want, text)
		}
	}

	// More changes, then the history: each version with its event.
	w.mustCLI("deploy", "spam", "--canary", "spam@v2:25", "--shadow", "spam@v3", "--reason", "more traffic")
	w.mustCLI("deploy", "rollback", "spam", "--reason", "v2 disagrees too often")
	w.mustCLI("deploy", "spam", "--alias", "champion", "--reason", "no shadow")
	code, jsonOut, _ = w.cli("deploy", "history", "spam", "--output", "json")
	var hist []api.Deployment
	if code != ExitOK || json.Unmarshal([]byte(jsonOut), &hist) != nil || len(hist) != 4 {
		t.Fatalf("history: %d %s", code, jsonOut)
	}
	events := map[int64]api.Event{}
	if err := w.client.Events(ctx, 0, false, func(e api.Event) error { events[e.Seq] = e; return nil }); err != nil {
		t.Fatal(err)
	}
	wantActions := []string{"set", "set", "rollback", "set"}
	for i, h := range hist {
		e, ok := events[h.EventSeq]
		if h.Version != i+1 || h.Action != wantActions[i] || h.Actor != "tester" || !ok || e.Type != "deployment.changed" || e.Subject != h.ID {
			t.Errorf("history[%d] = %+v, event %+v", i, h, e)
		}
	}
	if hist[2].Canary != nil || hist[2].Shadow != "spam@v3" || hist[2].Reason != "v2 disagrees too often" || hist[3].Shadow != "" || hist[1].Canary.Percent != 25 {
		t.Errorf("history: %s", jsonOut)
	}
	text = w.mustCLI("deploy", "history", "spam")
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 5 || !strings.Contains(lines[3], "rollback") || !strings.Contains(lines[3], "v2 disagrees too often") {
		t.Errorf("history text:\n%s", text)
	}
	// Without a shadow now, requests have no shadow records.
	id, _ := w.classify("spam", "hello", "user-x")
	time.Sleep(100 * time.Millisecond)
	for _, r := range w.records() {
		if r.RequestID == id && r.Variant != "primary" {
			t.Fatalf("after the shadow's removal: %+v", r)
		}
	}
}

type deployAnswer struct{ id, version, user string }

func countCanaries(answers []deployAnswer, times int) int {
	n := 0
	for _, a := range answers {
		if a.version == "spam@v2" {
			n += times
		}
	}
	return n
}

type wantComparison struct{ canary, shadow api.VariantComparison }

// independentComparison computes docs/serving.md's comparison directly.
func independentComparison(recs []reqlog.Record, fb map[string]string) wantComparison {
	stats := func(variant string, rs []reqlog.Record) api.VariantStats {
		s := api.VariantStats{Variant: variant, Versions: []string{}, Requests: len(rs)}
		var lat []float64
		for _, r := range rs {
			if !slices.Contains(s.Versions, r.Version) {
				s.Versions = append(s.Versions, r.Version)
			}
			if r.Status != 200 {
				s.Errors++
				continue
			}
			lat = append(lat, r.LatencyMS)
			if label, ok := fb[r.RequestID]; ok {
				s.Labelled++
				if r.Label == label {
					s.Correct++
				}
			}
		}
		sort.Strings(s.Versions)
		sort.Float64s(lat)
		rank := func(pct int) float64 { // nearest rank: ceil(pct/100 · n)
			if len(lat) == 0 {
				return 0
			}
			return lat[(pct*len(lat)+99)/100-1]
		}
		s.LatencyP50MS, s.LatencyP95MS = rank(50), rank(95)
		if s.Labelled > 0 {
			acc := float64(s.Correct) / float64(s.Labelled)
			s.Accuracy = &acc
		}
		return s
	}
	var primary, canary []reqlog.Record
	shadows := map[string]reqlog.Record{}
	for _, r := range recs {
		if r.Model != "spam" {
			continue
		}
		switch r.Variant {
		case "primary":
			primary = append(primary, r)
		case "canary":
			canary = append(canary, r)
		case "shadow":
			shadows[r.RequestID] = r
		}
	}
	var out wantComparison
	out.canary = api.VariantComparison{Primary: stats("primary", primary), Other: stats("canary", canary)}
	var pp, ss []reqlog.Record
	for _, p := range primary {
		if s, ok := shadows[p.RequestID]; ok {
			pp, ss = append(pp, p), append(ss, s)
			if p.Status == 200 && s.Status == 200 {
				out.shadow.Paired++
				if p.Label == s.Label {
					out.shadow.Agreed++
				}
			}
		}
	}
	out.shadow.Primary, out.shadow.Other = stats("primary", pp), stats("shadow", ss)
	if out.shadow.Paired > 0 {
		a := float64(out.shadow.Agreed) / float64(out.shadow.Paired)
		out.shadow.Agreement = &a
	}
	return out
}

func sameRate(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || math.Abs(*a-*b) < 1e-12)
}

func sameStats(a, b api.VariantStats) bool {
	return a.Variant == b.Variant && slices.Equal(a.Versions, b.Versions) && a.Requests == b.Requests && a.Errors == b.Errors &&
		a.LatencyP50MS == b.LatencyP50MS && a.LatencyP95MS == b.LatencyP95MS && a.Labelled == b.Labelled && a.Correct == b.Correct &&
		sameRate(a.Accuracy, b.Accuracy)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Promotion goes through the registry's gates: a canary whose version
// failed its eval is refused (forbidden, with the gate's reason) and stays;
// one that passes moves the alias, the canary is removed, and bare
// requests are answered by the new champion.
func TestDeployPromoteThroughGates(t *testing.T) {
	w := openDeployWorld(t, newDeployData(t))
	ctx := context.Background()
	w.mustCLI("deploy", "spam", "--canary", "spam@v2:10")
	code, out, errOut := w.cli("deploy", "promote", "spam", "--reason", "v2 looks fine")
	if code != ExitForbidden || !strings.Contains(errOut, "refused by gates") || !strings.Contains(errOut, "accuracy 0.41 < 0.80") {
		t.Fatalf("promote a failing canary = %d\n%s%s", code, out, errOut)
	}
	if d, err := w.client.Deployment(ctx, "spam"); err != nil || d.Canary == nil || d.Version != 1 {
		t.Fatalf("after the refusal the canary must stay: %+v, %v", d, err)
	}
	if v, err := w.client.Model(ctx, "spam", "champion"); err != nil || v.Version != 1 {
		t.Fatalf("after the refusal champion is v%d, %v", v.Version, err)
	}

	w.mustCLI("deploy", "spam", "--canary", "spam@v3:10", "--reason", "v3 instead")
	out = w.mustCLI("deploy", "promote", "spam", "--reason", "v3 passed its gates")
	if !strings.Contains(out, "spam@champion:") || !strings.Contains(out, "deployment spam v3: canary removed") {
		t.Fatalf("promote output:\n%s", out)
	}
	if v, err := w.client.Model(ctx, "spam", "champion"); err != nil || v.Version != 3 {
		t.Fatalf("champion is v%d, %v; want v3", v.Version, err)
	}
	d, err := w.client.Deployment(ctx, "spam")
	if err != nil || d.Canary != nil || d.Action != "promote" || d.Serving.Primary != "spam@v3" {
		t.Fatalf("deployment after promote: %+v, %v", d, err)
	}
	hist, err := w.client.AliasHistory(ctx, "spam", "champion")
	if err != nil || len(hist) != 2 || hist[1].Reason != "v3 passed its gates" || hist[1].Actor != "tester" {
		t.Fatalf("alias history %+v, %v", hist, err)
	}
	// The alias move reaches serving through its event.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, v := w.classify("spam", "hello", "someone"); v == "spam@v3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bare requests are not answered by the promoted version")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Nothing left to promote or roll back.
	if code, _, errOut := w.cli("deploy", "promote", "spam", "--reason", "again"); code != ExitConflict || !strings.Contains(errOut, "no canary") {
		t.Fatalf("promote without a canary = %d %s", code, errOut)
	}
	if code, _, errOut := w.cli("deploy", "rollback", "spam", "--reason", "again"); code != ExitConflict || !strings.Contains(errOut, "no canary") {
		t.Fatalf("rollback without a canary = %d %s", code, errOut)
	}
}

// A deployment survives a restart on the same data directory: the new App
// serves it (canary by the user-key rule, shadow records) before any
// change is made.
func TestDeploySurvivesRestart(t *testing.T) {
	dir := newDeployData(t)
	w := openDeployWorld(t, dir)
	w.mustCLI("deploy", "spam", "--canary", "spam@v2:50", "--shadow", "spam@v3", "--reason", "before restart")
	w.close()

	w = openDeployWorld(t, dir)
	if d, err := w.client.Deployment(context.Background(), "spam"); err != nil || d.Version != 1 || d.Canary == nil || d.Shadow != "spam@v3" {
		t.Fatalf("after restart: %+v, %v", d, err)
	}
	var ids []string
	for i := range 40 {
		user := fmt.Sprintf("restart-%d", i)
		id, v := w.classify("spam", "win a free prize now", user)
		want := map[bool]string{true: "spam@v2", false: "spam@v1"}[canaryByRule("spam", user, 50)]
		if v != want {
			t.Fatalf("after restart user %s got %s, want %s", user, v, want)
		}
		ids = append(ids, id)
	}
	w.waitShadows(ids)
}

// Bad input gets a clear error naming the flag or field, the error kind's
// exit code, and stores nothing.
func TestDeployBadInput(t *testing.T) {
	w := openDeployWorld(t, newDeployData(t))
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"deploy", "nosuch", "--alias", "champion"}, ExitNotFound, `field "model"`},
		{[]string{"deploy", "Bad Name"}, ExitInvalid, `field "model"`},
		{[]string{"deploy", "spam", "--alias", "nosuch"}, ExitNotFound, `field "alias"`},
		{[]string{"deploy", "spam", "--alias", "v2"}, ExitInvalid, `field "alias"`},
		{[]string{"deploy", "spam", "--canary", "spam@Bad:10"}, ExitInvalid, `field "canary.model"`},
		{[]string{"deploy", "spam", "--canary", "spam@v9:10"}, ExitNotFound, `field "canary.model"`},
		{[]string{"deploy", "spam", "--canary", "spam:10"}, ExitInvalid, `names no version`},
		{[]string{"deploy", "spam", "--canary", "ham@v2:10"}, ExitInvalid, `not a version of spam`},
		{[]string{"deploy", "spam", "--canary", "spam@v2"}, ExitUsage, `--canary "spam@v2": want NAME@REF:PCT`},
		{[]string{"deploy", "spam", "--canary", "spam@v2:ten"}, ExitUsage, `--canary`},
		{[]string{"deploy", "spam", "--canary", "spam@v2:0"}, ExitInvalid, `field "canary.percent"`},
		{[]string{"deploy", "spam", "--canary", "spam@v2:100"}, ExitInvalid, `field "canary.percent"`},
		{[]string{"deploy", "spam", "--canary", "spam@v2:-5"}, ExitInvalid, `field "canary.percent"`},
		{[]string{"deploy", "spam", "--canary", "spam@v2:150"}, ExitInvalid, `field "canary.percent"`},
		{[]string{"deploy", "spam", "--canary", "spam@champion:10"}, ExitInvalid, `primary itself`},
		{[]string{"deploy", "spam", "--canary", "spam@v1:10"}, ExitInvalid, `field "canary.model" "spam@v1" is v1, which the primary spam@champion already serves`},
		{[]string{"deploy", "spam", "--shadow", "spam@v9"}, ExitNotFound, `field "shadow"`},
		{[]string{"deploy", "spam", "--shadow", "spam@v1"}, ExitInvalid, `field "shadow"`},
		{[]string{"deploy", "spam", "--shadow", "spam"}, ExitInvalid, `field "shadow"`},
		{[]string{"deploy", "spam", "--reason", "bad\x1b[2Jreason"}, ExitInvalid, `reason`},
		{[]string{"deploy", "show", "spam"}, ExitNotFound, `no deployment`},
		{[]string{"deploy", "history", "spam"}, ExitNotFound, `no deployment`},
		{[]string{"deploy", "compare", "spam"}, ExitNotFound, `no deployment`},
		{[]string{"deploy", "promote", "spam", "--reason", "x"}, ExitNotFound, `no deployment`},
		{[]string{"deploy", "rollback", "spam"}, ExitInvalid, `reason is required`},
	}
	for _, tc := range tests {
		code, out, errOut := w.cli(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("tailor %q = %d\nstdout %q\nstderr %q\nwant %d, %q", tc.args, code, out, errOut, tc.code, tc.err)
		}
	}
	if ds, err := w.client.Deployments(context.Background()); err != nil || len(ds) != 0 {
		t.Fatalf("bad input stored %+v, %v", ds, err)
	}
	if code, _, errOut := w.cli("deploy", "compare", "spam", "--all", "--version", "1"); code != ExitInvalid || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("compare --all --version = %d %s", code, errOut)
	}
}

// With the alias under approval, promoting the canary opens an approval
// and changes nothing else; once a second person approves, promoting
// again only removes the canary.
func TestDeployPromoteWithApproval(t *testing.T) {
	w := openDeployWorld(t, newDeployData(t), func(o *app.Options) { o.RequireApproval = map[string]bool{"champion": true} })
	ctx := context.Background()
	w.mustCLI("deploy", "spam", "--canary", "spam@v3:10")
	out := w.mustCLI("deploy", "promote", "spam", "--reason", "v3 passed")
	if !strings.Contains(out, "pending") || !strings.Contains(out, "the canary keeps running") {
		t.Fatalf("promote under approval:\n%s", out)
	}
	if d, err := w.client.Deployment(ctx, "spam"); err != nil || d.Canary == nil || d.Version != 1 {
		t.Fatalf("the canary must stay until approval: %+v, %v", d, err)
	}
	aps, err := w.client.Approvals(ctx, "spam", "pending")
	if err != nil || len(aps) != 1 {
		t.Fatalf("approvals %+v, %v", aps, err)
	}
	// The requester may not approve their own promotion.
	if code, _, errOut := w.cli("model", "approve", aps[0].ID, "--reason", "looks good to me"); code != ExitForbidden || !strings.Contains(errOut, "tester requested it and cannot approve it") {
		t.Fatalf("self-approval = %d %s", code, errOut)
	}
	t.Setenv("TAILOR_TOKEN", w.admin("second-person"))
	w.mustCLI("model", "approve", aps[0].ID, "--reason", "checked the comparison")
	out = w.mustCLI("deploy", "promote", "spam", "--reason", "approved")
	if strings.Contains(out, "->") || !strings.Contains(out, "canary removed") {
		t.Fatalf("promote after approval:\n%s", out)
	}
	if v, err := w.client.Model(ctx, "spam", "champion"); err != nil || v.Version != 3 {
		t.Fatalf("champion v%d, %v", v.Version, err)
	}
	if d, err := w.client.Deployment(ctx, "spam"); err != nil || d.Canary != nil || d.Version != 2 || d.Actor != "second-person" {
		t.Fatalf("after approval: %+v, %v", d, err)
	}
}
