package registry

import (
	"context"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// Options.Admit is asked before every alias move and approval request;
// its refusal moves nothing and records nothing.
func TestAdmitRefusesMoves(t *testing.T) {
	f := newFixture(t, map[string]bool{"champion": true})
	refuse := map[string]bool{} // regions Admit refuses
	f.reg.opts.Admit = func(_ context.Context, v store.ModelVersion) error {
		if refuse[v.Region] {
			return errs.Forbidden("version %s v%d is in region %q", v.Name, v.Version, v.Region)
		}
		return nil
	}
	var vs []Version
	for i, region := range []string{"eu", "us", "eu"} {
		in := input("spam", string(rune('a'+i)))
		in.Region = region
		v, _, err := f.reg.Register(ctx, in)
		must(t, err)
		vs = append(vs, v)
	}
	override := func(r PromoteRequest) PromoteRequest {
		r.Override, r.OverrideReason = true, "no reports here"
		return r
	}
	// Before refusing: staging v2 then v1; an approval for champion → v3.
	_, err := f.reg.Promote(ctx, override(promote("spam", "v2", "staging")))
	must(t, err)
	_, err = f.reg.Promote(ctx, override(promote("spam", "v1", "staging")))
	must(t, err)
	pr, err := f.reg.Promote(ctx, override(promote("spam", "v3", "champion")))
	must(t, err)
	if pr.Approval == nil {
		t.Fatal("champion needs an approval")
	}
	refuse["us"] = true
	events := len(f.pub.types())

	_, err = f.reg.Promote(ctx, override(promote("spam", "v2", "canary")))
	wantErr(t, err, "forbidden", `promote model "spam" v2 to "canary"`, `region "us"`)
	_, err = f.reg.Promote(ctx, override(promote("spam", "v2", "champion")))
	wantErr(t, err, "forbidden", `promote model "spam" v2 to "champion"`)
	_, err = f.reg.Rollback(ctx, "spam", "staging", "undo", "ana")
	wantErr(t, err, "forbidden", `roll back model "spam" alias "staging"`, `region "us"`)
	refuse["eu"] = true
	_, err = f.reg.Approve(ctx, pr.Approval.ID, "bob", "fine")
	wantErr(t, err, "forbidden", `approve approval "`+pr.Approval.ID+`"`, `region "eu"`)

	if got := f.target(t, "spam", "canary"); got != "" {
		t.Errorf("canary points at %s", got)
	}
	if got := f.target(t, "spam", "staging"); got != vs[0].ID {
		t.Errorf("staging moved to %s, want still v1", got)
	}
	if got := f.target(t, "spam", "champion"); got != "" {
		t.Errorf("champion points at %s", got)
	}
	aps, err := f.reg.Approvals(ctx, "spam", store.ApprovalPending)
	must(t, err)
	if len(aps) != 1 || aps[0].ID != pr.Approval.ID {
		t.Errorf("pending approvals %+v, want only %s", aps, pr.Approval.ID)
	}
	if n := len(f.pub.types()); n != events {
		t.Errorf("refusals published %d events", n-events)
	}
}
