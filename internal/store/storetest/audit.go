package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// testAudit: every appended event gets one audit entry in its transaction,
// attributed to the context's actor (store.SystemActor when none) and
// project, chained to the entry before it, with Before the object's last
// After; a failed change adds none; paging and verifying read it back.
func testAudit(t *testing.T, s store.Store) {
	empty, err := s.VerifyAudit(ctx)
	must(t, err)
	equal(t, "verification of an empty log", empty, store.AuditVerification{})
	all := store.WithAllProjects(ctx)
	if es, err := s.AuditEntries(all, 0, 0); err != nil || len(es) != 0 {
		t.Fatalf("entries of an empty log: %v, %v", es, err)
	}

	alice := store.WithProject(store.WithActor(ctx, "alice"), "p1")
	v := dataset("audited", "a1", 0)
	evs1, err := s.PutDatasetVersion(alice, v, []store.Event{ev("dataset.version.created", v.ID)})
	must(t, err)
	// No actor, no project: the fallbacks.
	a := store.Alias{Kind: "model", Name: "m", Alias: "champion", Target: "mv-1", UpdatedAt: at(1)}
	evs2, err := s.SetAlias(ctx, a, []store.Event{ev("model.alias.moved", "m"), ev("model.note", "other")})
	must(t, err)
	// The same object again: Before is its previous After.
	a.Target = "mv-2"
	bob := store.WithActor(ctx, "bob")
	moved := store.Event{Type: "model.alias.moved", Subject: "m", Data: json.RawMessage(`{"to":"mv-2"}`)}
	evs3, err := s.SetAlias(bob, a, []store.Event{moved})
	must(t, err)
	// A failed change (the same dataset version again) adds no entry.
	if _, err := s.PutDatasetVersion(alice, v, []store.Event{ev("dataset.version.created", v.ID)}); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("duplicate dataset version: %v, want a conflict", err)
	}

	sent := append(append(append([]store.Event{}, evs1...), evs2...), evs3...)
	who := []struct{ actor, project string }{{"alice", "p1"}, {store.SystemActor, store.DefaultProject},
		{store.SystemActor, store.DefaultProject}, {"bob", store.DefaultProject}}
	es, err := s.AuditEntries(all, 0, 0)
	must(t, err)
	if len(es) != len(sent) {
		t.Fatalf("%d audit entries for %d events: %+v", len(es), len(sent), es)
	}
	prev := ""
	for i, e := range es {
		evt := sent[i]
		kind, id := store.AuditObject(evt)
		want := store.AuditEntry{Seq: int64(i + 1), Time: evt.Time, Actor: who[i].actor, Project: who[i].project,
			Action: evt.Type, ObjectKind: kind, ObjectID: id, EventSeq: evt.Seq, After: store.AuditAfter(evt), PrevHash: prev}
		if i == 3 {
			want.Before = es[1].After // model "m"'s previous entry
		}
		want.Hash = store.AuditHash(want)
		equal(t, fmt.Sprintf("audit entry %d", i+1), e, want)
		prev = e.Hash
	}
	if es[1].After == es[3].After {
		t.Errorf("two different changes of one object have the same after digest %s", es[1].After)
	}

	page, err := s.AuditEntries(all, 1, 2)
	must(t, err)
	equal(t, "entries after 1, limit 2", page, es[1:3])
	// Without AllProjects, the context's project's entries only.
	page, err = s.AuditEntries(ctx, 0, 0)
	must(t, err)
	equal(t, "the default project's entries", page, es[1:4])
	page, err = s.AuditEntries(alice, 0, 0)
	must(t, err)
	equal(t, "p1's entries", page, es[:1])
	got, err := s.VerifyAudit(ctx)
	must(t, err)
	equal(t, "verification", got, store.AuditVerification{Entries: 4, HeadSeq: 4, HeadHash: es[3].Hash})

	// A secret in an event's data is digested, never stored in the log.
	const secret = "https://hooks.example.com/services/T0K3N-s3cr3t" // #nosec G101 -- a made-up token the test looks for in the log
	data, _ := json.Marshal(map[string]string{"url": secret})
	_, err = s.AppendEvents(alice, []store.Event{{Type: "trigger.webhook.sent", Subject: "hook", Data: data}})
	must(t, err)
	es, err = s.AuditEntries(all, 4, 0)
	must(t, err)
	raw, _ := json.Marshal(es)
	if len(es) != 1 || strings.Contains(string(raw), "T0K3N") {
		t.Errorf("the audit entry of an event naming a secret: %s", raw)
	}
}

// testAuditConcurrent: concurrent writers still leave one unbroken chain
// with one entry per event.
func testAuditConcurrent(t *testing.T, s store.Store) {
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := store.WithActor(ctx, fmt.Sprint("writer-", w))
			for i := range each {
				if _, err := s.AppendEvents(c, []store.Event{ev("run.state.changed", fmt.Sprintf("r%d-%d", w, i))}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	got, err := s.VerifyAudit(ctx)
	must(t, err)
	if !got.OK() || got.Entries != writers*each {
		t.Fatalf("after %d concurrent events: %+v", writers*each, got)
	}
	evs, err := s.Events(ctx, 0, 0)
	must(t, err)
	es, err := s.AuditEntries(store.WithAllProjects(ctx), 0, 0)
	must(t, err)
	for i, e := range es {
		if e.EventSeq != evs[i].Seq || e.ObjectID != evs[i].Subject {
			t.Fatalf("audit entry %d records event %d %q, want %d %q", e.Seq, e.EventSeq, e.ObjectID, evs[i].Seq, evs[i].Subject)
		}
	}
}

// testAuditProjects: a project reads, pages (oldest and newest first) and
// counts its own entries, whose seqs have gaps where other projects'
// entries fall; an object's Before is its last After in the same
// project, so two projects' objects of one name are two objects; and the
// chain over both verifies.
func testAuditProjects(t *testing.T, s store.Store) {
	blue, red := store.WithProject(ctx, "blue"), store.WithProject(ctx, "red")
	var blueSeqs []int64
	for i := range 10 {
		c := red
		if i%3 != 2 {
			c = blue
		}
		// One object name in both projects.
		evs, err := s.AppendEvents(c, []store.Event{{Type: "model.alias.moved", Subject: "mail", Data: json.RawMessage(fmt.Sprintf(`{"to":"v%d"}`, i))}})
		must(t, err)
		if c == blue {
			blueSeqs = append(blueSeqs, evs[0].Seq)
		}
	}
	seqs := func(es []store.AuditEntry) []int64 {
		out := []int64{}
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	reversed := func(v []int64) []int64 {
		out := append([]int64{}, v...)
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return out
	}
	es, err := s.AuditEntries(blue, 0, 0)
	must(t, err)
	equal(t, "blue's entries, oldest first", seqs(es), blueSeqs)
	for i, e := range es {
		if e.Project != "blue" {
			t.Fatalf("blue read entry %d of project %q", e.Seq, e.Project)
		}
		if i > 0 && e.Before != es[i-1].After {
			t.Errorf("blue entry %d: before %q, want blue's previous after %q", e.Seq, e.Before, es[i-1].After)
		}
	}
	if es[0].Before != "" {
		t.Errorf("blue's first entry for mail has before %q; red's entries are another object", es[0].Before)
	}
	n, err := s.AuditCount(blue)
	must(t, err)
	if n != int64(len(blueSeqs)) {
		t.Errorf("blue's count %d, want %d", n, len(blueSeqs))
	}
	if n, err := s.AuditCount(store.WithAllProjects(ctx)); err != nil || n != 10 {
		t.Errorf("every project's count %d, %v; want 10", n, err)
	}
	if n, err := s.AuditCount(store.WithProject(ctx, "green")); err != nil || n != 0 {
		t.Errorf("an empty project's count %d, %v", n, err)
	}
	newest, err := s.AuditEntriesBefore(blue, 0, 0)
	must(t, err)
	equal(t, "blue newest first", seqs(newest), reversed(blueSeqs))
	// Pages of 2, newest first, each before the previous page's oldest.
	var got []int64
	for before := int64(0); ; {
		p, err := s.AuditEntriesBefore(blue, before, 2)
		must(t, err)
		if len(p) == 0 {
			break
		}
		got = append(got, seqs(p)...)
		before = p[len(p)-1].Seq
	}
	equal(t, "blue newest first by 2", got, reversed(blueSeqs))
	p, err := s.AuditEntriesBefore(red, 0, 1)
	must(t, err)
	if len(p) != 1 || p[0].Project != "red" || p[0].Seq != 9 {
		t.Errorf("red's newest entry: %+v, want seq 9", p)
	}
	v, err := s.VerifyAudit(ctx)
	must(t, err)
	if !v.OK() || v.Entries != 10 {
		t.Errorf("verify over two projects: %+v", v)
	}
}
