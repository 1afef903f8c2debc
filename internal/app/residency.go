package app

import (
	"context"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/store"
)

// residencyCheck asks the residency policy about compute in this server's
// region. Every place that moves bytes of a dataset, base, model or report
// calls it before the first byte moves (DESIGN.md invariant 5).
type residencyCheck struct {
	policy *residency.Policy
	region string // where this server computes
}

func (c residencyCheck) read(o residency.Object) error  { return c.policy.Read(c.region, o) }
func (c residencyCheck) write(o residency.Object) error { return c.policy.Write(c.region, o) }

// readAll returns the first refusal among objs, in their order.
func (c residencyCheck) readAll(objs ...residency.Object) error {
	for _, o := range objs {
		if err := c.read(o); err != nil {
			return err
		}
	}
	return nil
}

func datasetObject(v store.DatasetVersion) residency.Object {
	return residency.Object{Kind: "dataset", Name: v.Name + "@" + short(v.ID), Region: v.Region}
}

func baseObject(v store.BaseVersion) residency.Object {
	return residency.Object{Kind: "base", Name: fmt.Sprintf("%s@v%d", v.Name, v.Version), Region: v.Region}
}

func modelObject(v store.ModelVersion) residency.Object {
	return residency.Object{Kind: "model", Name: fmt.Sprintf("%s@v%d", v.Name, v.Version), Region: v.Region}
}

// readableBase returns a base version with fingerprint id that compute
// here may read: the first such row, oldest first (a base copied to
// another region has the same fingerprint under another name). When none
// is readable it returns the refusal for the oldest row.
func (c residencyCheck) readableBase(ctx context.Context, st store.Store, id string) (store.BaseVersion, error) {
	vs, err := st.BaseVersions(ctx, "")
	if err != nil {
		return store.BaseVersion{}, err
	}
	var refusal error
	for _, v := range vs {
		if v.ID != id {
			continue
		}
		err := c.read(baseObject(v))
		if err == nil {
			return v, nil
		}
		if refusal == nil {
			refusal = err
		}
	}
	if refusal != nil {
		return store.BaseVersion{}, refusal
	}
	return store.BaseVersion{}, errs.NotFound("base version %s", id)
}

// readableModel checks that compute here may read model version v (its
// adapter and reports) and a copy of its base; it returns that base. A
// version without a recorded region (registered in code, not by a run)
// lives where its base does, so the base's check decides.
func (c residencyCheck) readableModel(ctx context.Context, st store.Store, v store.ModelVersion) (store.BaseVersion, error) {
	if v.Region != "" {
		if err := c.read(modelObject(v)); err != nil {
			return store.BaseVersion{}, err
		}
	}
	bv, err := c.readableBase(ctx, st, v.BaseID)
	if err != nil {
		return bv, fmt.Errorf("model %s@v%d: its base: %w", v.Name, v.Version, err)
	}
	return bv, nil
}

func (a *App) residency() residencyCheck {
	return residencyCheck{policy: a.policy, region: a.opts.Region}
}
