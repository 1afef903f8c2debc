package storetest

import (
	"fmt"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func approval(id, name, target string, i int) store.Approval {
	return store.Approval{ID: id, Kind: "model", Name: name, Alias: "champion", Target: target, Reason: "better recall",
		RequestedBy: "ana", RequestedAt: at(i)}
}

func testApprovals(t *testing.T, s store.Store) {
	var stored []store.Approval
	for i, a := range []store.Approval{
		approval("ap-1", "sentiment", "mv-1", 0),
		approval("ap-2", "sentiment", "mv-2", 1),
		approval("ap-3", "spam", "mv-9", 2),
	} {
		if i == 1 {
			a.Override, a.OverrideReason = true, "eval suite broken, see INC-7"
		}
		prev := lastSeq(t, s)
		sent := []store.Event{ev("model.approval.requested", a.ID)}
		got, evs, err := s.PutApproval(ctx, a, sent)
		must(t, err)
		checkEvents(t, s, prev, sent, evs)
		a.State = store.ApprovalPending
		equal(t, "put "+a.ID, got, a)
		back, err := s.Approval(ctx, a.ID)
		must(t, err)
		equal(t, "read "+a.ID, back, a)
		stored = append(stored, got)
	}
	_, _, err := s.PutApproval(ctx, approval("ap-1", "sentiment", "mv-5", 5), nil)
	wantKind(t, "duplicate", err, errs.ErrConflict, `"ap-1"`)
	_, _, err = s.PutApproval(ctx, store.Approval{ID: "ap-x", Kind: "model", Name: "n", Alias: "a", Target: "t"}, nil)
	wantKind(t, "no requester", err, errs.ErrInvalid, "requested_by")
	_, err = s.Approval(ctx, "nope")
	wantKind(t, "unknown id", err, errs.ErrNotFound, `"nope"`)

	// Reject ap-1: a plain compare-and-set on state, no move.
	rej, evs, err := s.UpdateApproval(ctx, store.ApprovalUpdate{ID: "ap-1", IfState: store.ApprovalPending,
		State: store.ApprovalRejected, DecidedBy: "bo", DecisionReason: "not yet", DecidedAt: at(10)},
		[]store.Event{ev("model.approval.rejected", "ap-1")})
	must(t, err)
	if len(evs) != 1 || evs[0].Seq == 0 {
		t.Errorf("reject events %v", evs)
	}
	want := stored[0]
	want.State, want.DecidedBy, want.DecisionReason, want.DecidedAt = store.ApprovalRejected, "bo", "not yet", at(10)
	equal(t, "rejected", rej, want)
	_, err = s.Alias(ctx, "model", "sentiment", "champion")
	wantKind(t, "alias after reject", err, errs.ErrNotFound)

	// Deciding again is a conflict, and so is a stale state.
	_, _, err = s.UpdateApproval(ctx, store.ApprovalUpdate{ID: "ap-1", IfState: store.ApprovalPending,
		State: store.ApprovalApproved, DecidedBy: "cy"}, nil)
	wantKind(t, "decide twice", err, errs.ErrConflict, `"ap-1"`, "rejected")
	_, _, err = s.UpdateApproval(ctx, store.ApprovalUpdate{ID: "nope", IfState: store.ApprovalPending,
		State: store.ApprovalApproved}, nil)
	wantKind(t, "unknown approval", err, errs.ErrNotFound, `"nope"`)
	_, _, err = s.UpdateApproval(ctx, store.ApprovalUpdate{ID: "ap-2", IfState: store.ApprovalPending, State: "maybe"}, nil)
	wantKind(t, "bad state", err, errs.ErrInvalid, "maybe")

	// A move whose compare-and-set fails rolls the decision back.
	bad := move("champion", "mv-0", "mv-2", 11)
	before := lastSeq(t, s)
	_, _, err = s.UpdateApproval(ctx, store.ApprovalUpdate{ID: "ap-2", IfState: store.ApprovalPending,
		State: store.ApprovalApproved, DecidedBy: "bo", Move: &bad}, []store.Event{ev("model.alias.moved", "champion")})
	wantKind(t, "approve with stale move", err, errs.ErrConflict, `"ap-2"`, `"mv-0"`)
	back, err := s.Approval(ctx, "ap-2")
	must(t, err)
	equal(t, "approval after rolled-back decision", back, stored[1])
	if seq := lastSeq(t, s); seq != before {
		t.Errorf("rolled-back decision appended events: last seq %d, want %d", seq, before)
	}

	// Approve ap-2 and move the alias in one transaction.
	m := move("champion", "", "mv-2", 12)
	m.ApprovalID = "ap-2"
	sent := []store.Event{ev("model.approval.approved", "ap-2"), ev("model.alias.moved", "champion")}
	appr, evs, err := s.UpdateApproval(ctx, store.ApprovalUpdate{ID: "ap-2", IfState: store.ApprovalPending,
		State: store.ApprovalApproved, DecidedBy: "bo", DecisionReason: "ok", DecidedAt: at(12), Move: &m}, sent)
	must(t, err)
	checkEvents(t, s, before, sent, evs)
	want = stored[1]
	want.State, want.DecidedBy, want.DecisionReason, want.DecidedAt = store.ApprovalApproved, "bo", "ok", at(12)
	equal(t, "approved", appr, want)
	a, err := s.Alias(ctx, "model", "sentiment", "champion")
	must(t, err)
	if a.Target != "mv-2" {
		t.Errorf("champion → %q after approval, want mv-2", a.Target)
	}
	h, err := s.AliasHistory(ctx, "model", "sentiment", "champion")
	must(t, err)
	if len(h) != 1 || h[0].ApprovalID != "ap-2" || h[0].To != "mv-2" {
		t.Errorf("history after approval = %+v", h)
	}

	tests := []struct {
		name  string
		state store.ApprovalState
		want  []string
	}{
		{"sentiment", "", []string{"ap-1", "ap-2"}},
		{"sentiment", store.ApprovalApproved, []string{"ap-2"}},
		{"sentiment", store.ApprovalPending, nil},
		{"", store.ApprovalPending, []string{"ap-3"}},
		{"", "", []string{"ap-1", "ap-2", "ap-3"}},
		{"missing", "", nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("list %q %q", tc.name, tc.state), func(t *testing.T) {
			list, err := s.Approvals(ctx, tc.name, tc.state)
			must(t, err)
			var ids []string
			for _, a := range list {
				ids = append(ids, a.ID)
			}
			equal(t, "ids", ids, tc.want)
		})
	}
}
