package cli

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/store"
)

// actorHandler signs the test's requests: one that carries no token gets
// a real token of the actor the test names (minted by the server's own
// authority, admin in the default project), so the actor reaches the
// audit log the one way it does in production: the token's principal,
// put in the request's context by the HTTP layer's guard.
type actorHandler struct {
	h         http.Handler
	authority *auth.Authority
	actor     atomic.Pointer[string]
	mu        sync.Mutex
	tokens    map[string]string // actor → bearer secret
}

func (a *actorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := a.actor.Load(); s != nil && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+a.token(*s))
	}
	a.h.ServeHTTP(w, r)
}

// token is actor's token, minted on first use by "root".
func (a *actorHandler) token(actor string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tokens[actor]; ok {
		return t
	}
	token, err := adminToken(a.authority, actor)
	if err != nil {
		panic(fmt.Sprintf("mint a token for %s: %v", actor, err))
	}
	a.tokens[actor] = token
	return token
}

func (a *actorHandler) as(actor string) { a.actor.Store(&actor) }

// auditWorld is an App on dir behind a real loopback server whose
// requests act as the actor the test sets.
type auditWorld struct {
	serverWorld
	client *api.Client
	auth   *actorHandler
}

func openAuditWorld(t *testing.T, dir string, start bool, opts ...func(*app.Options)) *auditWorld {
	return openAuditWorldTokens(t, dir, start, map[string]string{}, opts...)
}

// openAuditWorldTokens is openAuditWorld signing with tokens (actor →
// secret) minted earlier on dir's store, minting only actors it lacks.
func openAuditWorldTokens(t *testing.T, dir string, start bool, tokens map[string]string, opts ...func(*app.Options)) *auditWorld {
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
	if start {
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	authority := a.Authority(auth.Options{Rate: -1})
	signer := &actorHandler{h: httpapi.New(httpapi.Options{Auth: authority, Service: a, Inference: a.Inference()}), authority: authority,
		tokens: tokens}
	signer.as("tester")
	srv := httptest.NewServer(signer)
	w := &auditWorld{serverWorld: serverWorld{t: t, app: a, srv: srv, cancel: cancel}, client: api.NewClient(srv.URL, nil), auth: signer}
	t.Cleanup(w.close)
	return w
}

// entries reads the whole log through the API.
func (w *auditWorld) entries() []api.AuditEntry {
	w.t.Helper()
	page, err := w.client.AuditEntries(context.Background(), 0, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	return page.Entries
}

func mailRecords(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "{\"id\":\"r%d\",\"text\":\"message %d\",\"label\":\"%s\"}\n", i, i, []string{"ham", "spam"}[i%2])
	}
	return b.String()
}

// TestAuditCommandsAndTamper: changes made through a real server on a real
// SQLite file are listed, exported and verified by the CLI; then, with the
// server closed, the file is edited directly (each edit on its own copy)
// and `tailor audit verify` must fail naming the first broken entry and
// the check it failed.
func TestAuditCommandsAndTamper(t *testing.T) {
	pristine := t.TempDir()
	w := openAuditWorld(t, pristine, false)
	ctx := context.Background()
	// Each actor's token first (entries 1-4, token.created by root), so
	// the copies tampered with below already hold them.
	for _, who := range []string{"tester", "alice", "bob", "carol"} {
		w.auth.token(who)
	}
	for i, who := range []string{"alice", "bob", "alice", "carol", "bob"} {
		w.auth.as(who)
		_, err := w.client.ImportDataset(ctx, strings.NewReader(mailRecords(i*10, 10)),
			api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl", Append: i > 0})
		if err != nil {
			t.Fatal(err)
		}
	}
	w.auth.as("tester")
	es := w.entries()
	if len(es) != 9 {
		t.Fatalf("%d audit entries after 4 tokens and 5 imports: %+v", len(es), es)
	}
	for i := range 4 {
		if e := es[i]; e.Actor != "root" || e.Action != "token.created" {
			t.Errorf("entry %d: %+v, want token.created by root", i+1, e)
		}
	}
	for i, who := range []string{"alice", "bob", "alice", "carol", "bob"} {
		if e := es[4+i]; e.Actor != who || e.Action != "dataset.version.created" || e.ObjectKind != "dataset" || e.Project != store.DefaultProject {
			t.Errorf("entry %d: %+v, want dataset.version.created by %s", i+1, e, who)
		}
	}

	tokens := maps.Clone(w.auth.tokens)
	head := fmt.Sprintf("9:%s", es[8].Hash)
	if out := w.mustCLI("audit", "verify"); !strings.Contains(out, "checked 9 entries; head "+head) {
		t.Fatalf("audit verify: %q", out)
	}
	text := w.mustCLI("audit", "list", "--after", "1", "--limit", "3")
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], "2 ") || !strings.HasPrefix(lines[3], "4 ") {
		t.Fatalf("audit list --after 1 --limit 3:\n%s", text)
	}
	var listed []api.AuditEntry
	for _, line := range strings.Split(strings.TrimSpace(w.mustCLI("audit", "list", "--json")), "\n") {
		var e api.AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit list --json line %q: %v", line, err)
		}
		listed = append(listed, e)
	}
	equalJSON(t, "audit list --json", listed, es)
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	w.mustCLI("audit", "export", "--out", out)
	exported := readJSONL(t, out)
	equalJSON(t, "audit export", exported, es)
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Fatalf("the export left %d files beside it", len(ents))
	}
	w.close()

	tests := []struct {
		name  string
		sql   []string
		seq   int64
		check string
	}{
		{"actor changed", []string{`UPDATE audit_log SET actor = 'mallory' WHERE seq = 7`}, 7, "hash_mismatch"},
		{"time changed", []string{`UPDATE audit_log SET time = '2001-01-01T00:00:00.000000000Z' WHERE seq = 8`}, 8, "hash_mismatch"},
		{"time unreadable", []string{`UPDATE audit_log SET time = 'yesterday' WHERE seq = 6`}, 6, "hash_mismatch"},
		{"row deleted", []string{`DELETE FROM audit_log WHERE seq = 6`}, 7, "seq_gap"},
		{"first row deleted", []string{`DELETE FROM audit_log WHERE seq = 1`}, 2, "seq_gap"},
		{"newest row renumbered below the first", []string{`UPDATE audit_log SET seq = 0 WHERE seq = 9`}, 0, "seq_gap"},
		{"rows reordered", []string{`UPDATE audit_log SET seq = -2 WHERE seq = 6`, `UPDATE audit_log SET seq = 6 WHERE seq = 7`,
			`UPDATE audit_log SET seq = 7 WHERE seq = -2`}, 6, "prev_hash_mismatch"},
		{"entry rewritten and rehashed", []string{`UPDATE audit_log SET actor = 'mallory', hash = '` +
			rehash(es[5], func(e *store.AuditEntry) { e.Actor = "mallory" }) + `' WHERE seq = 6`}, 7, "prev_hash_mismatch"},
		{"event edited", []string{`UPDATE events SET data = '{"records":1}' WHERE seq = ` + fmt.Sprint(es[7].EventSeq)}, 8, "event_mismatch"},
		{"event deleted", []string{`DELETE FROM events WHERE seq = ` + fmt.Sprint(es[8].EventSeq)}, 9, "event_mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := tampered(t, pristine, tokens, tc.sql)
			code, stdout, stderr := w.cli("audit", "verify")
			want := fmt.Sprintf("audit log broken at entry %d: ", tc.seq)
			if code != ExitConflict || !strings.Contains(stderr, want) || !strings.Contains(stderr, "["+tc.check+":") {
				t.Fatalf("audit verify = %d\n%s%s\nwant exit %d naming %q and %s", code, stdout, stderr, ExitConflict, want, tc.check)
			}
		})
	}

	// What verify alone cannot see, and the recorded head can: the whole
	// chain rewritten from the start, or its newest entry removed.
	var rewrite []string
	prev := ""
	for i, a := range es {
		e := store.AuditEntry{Seq: a.Seq, Time: a.Time, Actor: a.Actor, Project: a.Project, Action: a.Action, ObjectKind: a.ObjectKind,
			ObjectID: a.ObjectID, EventSeq: a.EventSeq, Before: a.Before, After: a.After, PrevHash: prev}
		if i == 5 {
			e.Actor = "mallory"
		}
		e.Hash = store.AuditHash(e)
		prev = e.Hash
		rewrite = append(rewrite, fmt.Sprintf(`UPDATE audit_log SET actor = '%s', prev_hash = '%s', hash = '%s' WHERE seq = %d`, e.Actor, e.PrevHash, e.Hash, e.Seq))
	}
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"whole chain rewritten", strings.Join(rewrite, ";\n"), "entry 9 has hash "},
		{"newest entry removed", `DELETE FROM audit_log WHERE seq = 9`, "entry 9, the head you recorded, is gone: the log now ends at entry 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tampered(t, pristine, tokens, strings.Split(tc.sql, ";\n"))
			w.mustCLI("audit", "verify")
			code, stdout, stderr := w.cli("audit", "verify", "--head", head)
			if code != ExitConflict || !strings.Contains(stderr, tc.want) {
				t.Fatalf("audit verify --head %s = %d\n%s%s\nwant exit %d naming %q", head, code, stdout, stderr, ExitConflict, tc.want)
			}
		})
	}
	w = tampered(t, pristine, tokens, nil)
	if out := w.mustCLI("audit", "verify", "--head", head); !strings.Contains(out, "entry 9 still has the recorded hash") {
		t.Fatalf("audit verify --head on the untouched log: %q", out)
	}
}

// tampered copies the closed data dir, applies stmts to its SQLite file
// directly and opens a server on the copy, signing with the tokens minted
// on the original (so no new entry is written).
func tampered(t *testing.T, pristine string, tokens map[string]string, stmts []string) *auditWorld {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(pristine)); err != nil {
		t.Fatal(err)
	}
	if len(stmts) > 0 {
		tamper(t, filepath.Join(dir, "tailor.db"), stmts)
	}
	return openAuditWorldTokens(t, dir, false, maps.Clone(tokens))
}

// rehash is what an attacker who knows the format writes: the entry's
// hash recomputed after the edit.
func rehash(a api.AuditEntry, edit func(*store.AuditEntry)) string {
	e := store.AuditEntry{Seq: a.Seq, Time: a.Time, Actor: a.Actor, Project: a.Project, Action: a.Action, ObjectKind: a.ObjectKind,
		ObjectID: a.ObjectID, EventSeq: a.EventSeq, Before: a.Before, After: a.After, PrevHash: a.PrevHash}
	edit(&e)
	return store.AuditHash(e)
}

// tamper edits the closed SQLite file directly, as someone with the file
// and no Tailor would: dropping the append-only triggers first.
func tamper(t *testing.T, path string, stmts []string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`}, stmts...) {
		res, err := db.Exec(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if n, _ := res.RowsAffected(); n != 1 && !strings.HasPrefix(s, "DROP") {
			t.Fatalf("%s changed %d rows, want 1: the edit did not happen", s, n)
		}
	}
}

func readJSONL(t *testing.T, path string) []api.AuditEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []api.AuditEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e api.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func equalJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// TestAuditLogIsAppendOnly: through any connection that keeps its triggers, the
// log refuses updates and deletes.
func TestAuditLogIsAppendOnly(t *testing.T) {
	dir := t.TempDir()
	w := openAuditWorld(t, dir, false)
	if _, err := w.client.ImportDataset(context.Background(), strings.NewReader(mailRecords(0, 3)),
		api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"}); err != nil {
		t.Fatal(err)
	}
	w.close()
	db, err := sql.Open("sqlite", filepath.Join(dir, "tailor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{`UPDATE audit_log SET actor = 'x'`, `DELETE FROM audit_log`} {
		if _, err := db.Exec(s); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", s, err)
		}
	}
}

// TestAuditExportCutLeavesNoFile: a transfer that breaks halfway writes no
// file, half or whole, and says to retry.
func TestAuditExportCutLeavesNoFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"seq":1,"hash":"ab"}`)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer srv.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "audit.jsonl")
	for _, args := range [][]string{{"--out", out}, {}} {
		code, stdout, stderr := runCLI(append([]string{"audit", "export", "--server", srv.URL}, args...)...)
		if code != ExitUnavailable || !strings.Contains(stderr, "retry") {
			t.Fatalf("audit export %v of a cut stream = %d\n%s%s", args, code, stdout, stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the cut export left %d files: %v", len(ents), ents)
	}
}
