package registry

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tailor-ml/tailor/internal/store"
)

func TestPromoteGates(t *testing.T) {
	tests := []struct {
		name     string
		verdicts []store.Verdict // reports attached to v1, oldest first
		edit     func(*PromoteRequest)
		kind     string // "" = promoted
		says     []string
	}{
		{"passing report", []store.Verdict{store.VerdictPass}, nil, "", nil},
		{"fail then pass", []store.Verdict{store.VerdictFail, store.VerdictPass}, nil, "", nil},
		{"no report", nil, nil, "forbidden", []string{"eval-report", "no eval report", "override"}},
		{"failing report", []store.Verdict{store.VerdictFail}, nil, "forbidden",
			[]string{"eval-verdict", "accuracy 0.71 < threshold 0.80", "override reason"}},
		{"pass then fail", []store.Verdict{store.VerdictPass, store.VerdictFail}, nil, "forbidden", []string{"eval-verdict"}},
		{"override failing", []store.Verdict{store.VerdictFail}, func(r *PromoteRequest) {
			r.Override, r.OverrideReason = true, "eval set mislabeled, see INC-42"
		}, "", nil},
		{"override no report", nil, func(r *PromoteRequest) {
			r.Override, r.OverrideReason = true, "hotfix"
		}, "", nil},
		{"override without reason", []store.Verdict{store.VerdictFail}, func(r *PromoteRequest) { r.Override = true },
			"invalid", []string{"override reason"}},
		{"reason without override", []store.Verdict{store.VerdictPass}, func(r *PromoteRequest) { r.OverrideReason = "x" },
			"invalid", []string{"override"}},
		{"no reason", []store.Verdict{store.VerdictPass}, func(r *PromoteRequest) { r.Reason = " " }, "invalid", []string{"reason is required"}},
		{"no actor", []store.Verdict{store.VerdictPass}, func(r *PromoteRequest) { r.Actor = "" }, "invalid", []string{"actor"}},
		{"bad alias", []store.Verdict{store.VerdictPass}, func(r *PromoteRequest) { r.Alias = "Champ" }, "invalid", []string{`"Champ"`}},
		{"reserved alias", []store.Verdict{store.VerdictPass}, func(r *PromoteRequest) { r.Alias = "v2" }, "invalid", []string{"reserved"}},
		{"unknown version", []store.Verdict{store.VerdictPass}, func(r *PromoteRequest) { r.Version = "v7" }, "not_found", []string{"v7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			v := f.register(t, "sentiment", 1)[0]
			for _, vd := range tc.verdicts {
				f.report(t, v, vd)
			}
			req := promote("sentiment", "v1", "champion")
			if tc.edit != nil {
				tc.edit(&req)
			}
			before := len(f.pub.types())
			got, err := f.reg.Promote(ctx, req)
			if tc.kind != "" {
				wantErr(t, err, tc.kind, tc.says...)
				if tgt := f.target(t, "sentiment", "champion"); tgt != "" {
					t.Errorf("refused promote moved the alias to %s", tgt)
				}
				if n := len(f.pub.types()); n != before {
					t.Errorf("refused promote published %d events", n-before)
				}
				return
			}
			must(t, err)
			want := store.AliasMove{Seq: got.Move.Seq, Kind: Kind, Name: "sentiment", Alias: "champion", To: v.ID,
				Action: ActionPromote, Reason: req.Reason, Actor: "ana", Override: req.Override,
				OverrideReason: req.OverrideReason, Time: got.Move.Time}
			if got.Approval != nil || !reflect.DeepEqual(*got.Move, want) {
				t.Errorf("promotion %+v, want move %+v", got, want)
			}
			if tgt := f.target(t, "sentiment", "champion"); tgt != v.ID {
				t.Errorf("champion → %q, want %s", tgt, v.ID)
			}
			hist, err := f.reg.History(ctx, "sentiment", "champion")
			must(t, err)
			if len(hist) != 1 || !reflect.DeepEqual(hist[0], *got.Move) {
				t.Errorf("history %+v, want the move", hist)
			}
		})
	}
}

func TestPromoteConflictAndAliasRef(t *testing.T) {
	f := newFixture(t, nil)
	vs := f.register(t, "sentiment", 2)
	for _, v := range vs {
		f.report(t, v, store.VerdictPass)
	}
	_, err := f.reg.Promote(ctx, promote("sentiment", "v1", "champion"))
	must(t, err)
	_, err = f.reg.Promote(ctx, promote("sentiment", vs[0].ID, "champion"))
	wantErr(t, err, "conflict", "already points at", `"sentiment" v1`)

	// Promote through another alias: challenger → champion.
	_, err = f.reg.Promote(ctx, promote("sentiment", "2", "challenger"))
	must(t, err)
	got, err := f.reg.Promote(ctx, promote("sentiment", "challenger", "champion"))
	must(t, err)
	if got.Move.From != vs[0].ID || got.Move.To != vs[1].ID {
		t.Errorf("move %+v, want v1 → v2", got.Move)
	}
	aliases, err := f.reg.Aliases(ctx, "sentiment")
	must(t, err)
	if len(aliases) != 2 || aliases[0].Alias != "champion" || aliases[0].Target != vs[1].ID {
		t.Errorf("aliases %+v", aliases)
	}
}

func TestApprovalFlow(t *testing.T) {
	f := newFixture(t, map[string]bool{"champion": true})
	vs := f.register(t, "sentiment", 3)
	for _, v := range vs {
		f.report(t, v, store.VerdictPass)
	}
	// Aliases without the policy move at once.
	p, err := f.reg.Promote(ctx, promote("sentiment", "v1", "challenger"))
	must(t, err)
	if p.Move == nil || p.Approval != nil {
		t.Fatalf("challenger promotion %+v, want a move", p)
	}

	p, err = f.reg.Promote(ctx, promote("sentiment", "v1", "champion"))
	must(t, err)
	if p.Move != nil || p.Approval == nil || p.Approval.State != store.ApprovalPending || p.Approval.RequestedBy != "ana" {
		t.Fatalf("champion promotion %+v, want a pending approval", p)
	}
	id := p.Approval.ID
	if tgt := f.target(t, "sentiment", "champion"); tgt != "" {
		t.Fatalf("pending approval moved champion to %s", tgt)
	}
	_, err = f.reg.Promote(ctx, promote("sentiment", "v1", "champion"))
	wantErr(t, err, "conflict", id, "already pending")

	_, err = f.reg.Approve(ctx, id, "ana", "lgtm")
	wantErr(t, err, "forbidden", "ana", "cannot approve", "another person")
	_, err = f.reg.Approve(ctx, "ap-nope", "bo", "")
	wantErr(t, err, "not_found", "ap-nope")
	_, err = f.reg.Approve(ctx, id, "", "")
	wantErr(t, err, "invalid", "actor")

	m, err := f.reg.Approve(ctx, id, "bo", "lgtm")
	must(t, err)
	if m.To != vs[0].ID || m.From != "" || m.Actor != "bo" || m.ApprovalID != id || m.Reason != "better on the holdout" || m.Seq == 0 {
		t.Errorf("approved move %+v", m)
	}
	if tgt := f.target(t, "sentiment", "champion"); tgt != vs[0].ID {
		t.Errorf("champion → %q after approval, want v1", tgt)
	}
	a, err := f.reg.Approval(ctx, id)
	must(t, err)
	if a.State != store.ApprovalApproved || a.DecidedBy != "bo" || a.DecisionReason != "lgtm" || a.DecidedAt.IsZero() {
		t.Errorf("approval after approve %+v", a)
	}
	_, err = f.reg.Approve(ctx, id, "cy", "")
	wantErr(t, err, "conflict", id, "already approved")

	// Reject: the alias stays, the requester may withdraw.
	p, err = f.reg.Promote(ctx, promote("sentiment", "v2", "champion"))
	must(t, err)
	rej, err := f.reg.Reject(ctx, p.Approval.ID, "ana", "withdrawn: wrong version")
	must(t, err)
	if rej.State != store.ApprovalRejected || rej.DecidedBy != "ana" {
		t.Errorf("rejected %+v", rej)
	}
	_, err = f.reg.Approve(ctx, p.Approval.ID, "bo", "")
	wantErr(t, err, "conflict", "already rejected")
	if tgt := f.target(t, "sentiment", "champion"); tgt != vs[0].ID {
		t.Errorf("champion → %q after reject, want v1", tgt)
	}

	// A version whose latest report fails after the request is refused at approval.
	p, err = f.reg.Promote(ctx, promote("sentiment", "v3", "champion"))
	must(t, err)
	f.report(t, vs[2], store.VerdictFail)
	_, err = f.reg.Approve(ctx, p.Approval.ID, "bo", "")
	wantErr(t, err, "forbidden", "eval-verdict")
	if a, _ := f.reg.Approval(ctx, p.Approval.ID); a.State != store.ApprovalPending {
		t.Errorf("refused approval state %q, want pending", a.State)
	}

	for _, tc := range []struct {
		state store.ApprovalState
		want  int
	}{{"", 3}, {store.ApprovalPending, 1}, {store.ApprovalApproved, 1}, {store.ApprovalRejected, 1}} {
		list, err := f.reg.Approvals(ctx, "sentiment", tc.state)
		must(t, err)
		if len(list) != tc.want {
			t.Errorf("approvals %q: %d, want %d", tc.state, len(list), tc.want)
		}
	}
	_, err = f.reg.Approvals(ctx, "sentiment", "maybe")
	wantErr(t, err, "invalid", "maybe")

	want := []string{
		EventVersionRegistered, EventVersionRegistered, EventVersionRegistered,
		EventReportAttached, EventReportAttached, EventReportAttached,
		EventAliasMoved,                        // challenger
		EventApprovalRequested,                 // v1 → champion
		EventApprovalApproved, EventAliasMoved, // approved in one transaction
		EventApprovalRequested, EventApprovalRejected, // v2
		EventApprovalRequested, EventReportAttached, // v3, then its failing report
	}
	if got := f.pub.types(); !reflect.DeepEqual(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
}

func TestRollback(t *testing.T) {
	f := newFixture(t, nil)
	vs := f.register(t, "sentiment", 3)
	for _, v := range vs {
		f.report(t, v, store.VerdictPass)
	}
	_, err := f.reg.Rollback(ctx, "sentiment", "champion", "bad", "ana")
	wantErr(t, err, "not_found", `"champion"`, "does not exist")
	_, err = f.reg.Promote(ctx, promote("sentiment", "v1", "champion"))
	must(t, err)
	_, err = f.reg.Rollback(ctx, "sentiment", "champion", "bad", "ana")
	wantErr(t, err, "conflict", "no previous target", "promote another version")
	for _, ref := range []string{"v2", "v3"} {
		_, err = f.reg.Promote(ctx, promote("sentiment", ref, "champion"))
		must(t, err)
	}
	_, err = f.reg.Rollback(ctx, "sentiment", "champion", "", "ana")
	wantErr(t, err, "invalid", "reason is required")

	// v1 → v2 → v3, then roll back twice: v2, v1; then there is nothing left.
	for _, want := range []int{2, 1} {
		m, err := f.reg.Rollback(ctx, "sentiment", "champion", "latency regression", "bo")
		must(t, err)
		if m.To != vs[want-1].ID || m.Action != ActionRollback || m.Actor != "bo" || m.Reason != "latency regression" {
			t.Errorf("rollback to v%d: %+v", want, m)
		}
		if tgt := f.target(t, "sentiment", "champion"); tgt != vs[want-1].ID {
			t.Errorf("champion → %s, want v%d", tgt, want)
		}
	}
	_, err = f.reg.Rollback(ctx, "sentiment", "champion", "again", "bo")
	wantErr(t, err, "conflict", "no previous target")

	hist, err := f.reg.History(ctx, "sentiment", "champion")
	must(t, err)
	type step struct {
		from, to int // version numbers, 0 = none
		action   string
	}
	num := map[string]int{"": 0, vs[0].ID: 1, vs[1].ID: 2, vs[2].ID: 3}
	var got []step
	for i, m := range hist {
		if i > 0 && m.Seq <= hist[i-1].Seq {
			t.Errorf("history seq %d after %d", m.Seq, hist[i-1].Seq)
		}
		got = append(got, step{num[m.From], num[m.To], m.Action})
	}
	want := []step{{0, 1, "promote"}, {1, 2, "promote"}, {2, 3, "promote"}, {3, 2, "rollback"}, {2, 1, "rollback"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history\n got %v\nwant %v", got, want)
	}
}

func TestPreviousTarget(t *testing.T) {
	mv := func(from, to, action string) store.AliasMove {
		return store.AliasMove{From: from, To: to, Action: action}
	}
	tests := []struct {
		name string
		hist []store.AliasMove
		cur  string
		want string
	}{
		{"empty", nil, "a", ""},
		{"one move", []store.AliasMove{mv("", "a", "promote")}, "a", ""},
		{"two moves", []store.AliasMove{mv("", "a", "promote"), mv("a", "b", "promote")}, "b", "a"},
		{"after rollback", []store.AliasMove{mv("", "a", "promote"), mv("a", "b", "promote"), mv("b", "c", "promote"),
			mv("c", "b", "rollback")}, "b", "a"},
		{"promote after rollback", []store.AliasMove{mv("", "a", "promote"), mv("a", "b", "promote"),
			mv("b", "a", "rollback"), mv("a", "c", "promote")}, "c", "a"},
		{"same version twice", []store.AliasMove{mv("", "a", "promote"), mv("a", "b", "promote"), mv("b", "a", "promote")}, "a", "b"},
		{"moved outside history", []store.AliasMove{mv("", "a", "promote"), mv("a", "b", "promote")}, "z", "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := previousTarget(tc.hist, tc.cur); got != tc.want {
				t.Errorf("previousTarget = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEventsAfterCommit checks that every published event was committed
// before it was published (the recorder checks each one), that they arrive
// in Seq order, and that the bus saw exactly the store's outbox.
func TestEventsAfterCommit(t *testing.T) {
	f := newFixture(t, map[string]bool{"champion": true})
	vs := f.register(t, "sentiment", 2)
	f.report(t, vs[0], store.VerdictPass)
	f.report(t, vs[1], store.VerdictFail)
	_, err := f.reg.Promote(ctx, promote("sentiment", "v2", "canary")) // refused: nothing published
	wantErr(t, err, "forbidden")
	req := promote("sentiment", "v2", "canary")
	req.Override, req.OverrideReason = true, "shadow traffic only"
	_, err = f.reg.Promote(ctx, req)
	must(t, err)
	p, err := f.reg.Promote(ctx, promote("sentiment", "v1", "champion"))
	must(t, err)
	_, err = f.reg.Approve(ctx, p.Approval.ID, "bo", "ok")
	must(t, err)
	_, err = f.reg.Rollback(ctx, "sentiment", "canary", "nope", "bo") // no previous target
	wantErr(t, err, "conflict")

	stored, err := f.st.Events(ctx, 0, 0)
	must(t, err)
	if !reflect.DeepEqual(f.pub.events, stored) {
		t.Fatalf("published\n%v\nstore outbox\n%v", f.pub.events, stored)
	}
	for i := 1; i < len(stored); i++ {
		if stored[i].Seq <= stored[i-1].Seq {
			t.Errorf("published seq %d after %d", stored[i].Seq, stored[i-1].Seq)
		}
	}
	var moves []moveEvent
	for _, e := range stored {
		if e.Type != EventAliasMoved {
			continue
		}
		var m moveEvent
		must(t, json.Unmarshal(e.Data, &m))
		if e.Subject != m.To {
			t.Errorf("move event subject %s, data to %s", e.Subject, m.To)
		}
		moves = append(moves, m)
	}
	want := []moveEvent{
		{Name: "sentiment", Alias: "canary", To: vs[1].ID, Version: 2, Action: ActionPromote, Reason: "better on the holdout",
			Actor: "ana", Override: true, OverrideReason: "shadow traffic only"},
		{Name: "sentiment", Alias: "champion", To: vs[0].ID, Version: 1, Action: ActionPromote, Reason: "better on the holdout",
			Actor: "bo", ApprovalID: p.Approval.ID},
	}
	if !reflect.DeepEqual(moves, want) {
		t.Errorf("move events\n got %+v\nwant %+v", moves, want)
	}
	all, err := f.reg.History(ctx, "sentiment", "")
	must(t, err)
	if len(all) != 2 || all[0].Alias != "canary" || all[1].Alias != "champion" || !all[0].Override {
		t.Errorf("history of all aliases %+v", all)
	}
}

// TestConcurrentPromote races promotions of different versions to one
// alias: each either moves it or fails with a conflict, and the history
// forms one chain (every move's From is the previous move's To).
func TestConcurrentPromote(t *testing.T) {
	f := newFixture(t, nil)
	vs := f.register(t, "sentiment", 6)
	for _, v := range vs {
		f.report(t, v, store.VerdictPass)
	}
	errc := make(chan error, len(vs))
	for i := range vs {
		go func() {
			_, err := f.reg.Promote(ctx, promote("sentiment", vs[i].ID, "champion"))
			errc <- err
		}()
	}
	won := 0
	for range vs {
		err := <-errc
		if err == nil {
			won++
			continue
		}
		wantErr(t, err, "conflict", "moved meanwhile")
	}
	hist, err := f.reg.History(ctx, "sentiment", "champion")
	must(t, err)
	if won == 0 || len(hist) != won {
		t.Fatalf("%d promotions won, %d history rows", won, len(hist))
	}
	prev := ""
	for _, m := range hist {
		if m.From != prev {
			t.Errorf("move %+v does not continue from %q", m, prev)
		}
		prev = m.To
	}
	if tgt := f.target(t, "sentiment", "champion"); tgt != prev {
		t.Errorf("champion → %s, history ends at %s", tgt, prev)
	}
}
