package app

import (
	"context"
	"math"
	"slices"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/reqlog"
	"github.com/tailor-ml/tailor/internal/store"
)

// CompareDeployment summarises model's deployment from the request log
// and the feedback: the primary against the canary and against the
// shadow. It reads the lifetime of one deployment version (the current one
// unless o.Version names another), or with o.All the whole log.
func (a *App) CompareDeployment(ctx context.Context, model string, o api.CompareOptions) (api.DeploymentComparison, error) {
	if _, _, err := a.latestDeployment(ctx, model); err != nil {
		return api.DeploymentComparison{}, err
	}
	vs, err := a.store.Specs(ctx, specDeployment, model)
	if err != nil {
		return api.DeploymentComparison{}, err
	}
	out := api.DeploymentComparison{Model: model}
	var scoped *deploymentDoc
	if !o.All {
		i := len(vs) - 1
		if o.Version != 0 {
			i = o.Version - 1
		}
		if i < 0 || i >= len(vs) {
			return out, errs.NotFound("deployment %s has no version %d (it has 1 to %d); see `tailor deploy history %s`", model, o.Version, len(vs), model)
		}
		d, err := parseDeploymentDoc(vs[i])
		if err != nil {
			return out, err
		}
		scoped = &d
		out.Version, out.From = vs[i].Version, vs[i].CreatedAt
		if i+1 < len(vs) {
			out.To = vs[i+1].CreatedAt
		}
	}
	var recs []reqlog.Record
	project := store.ProjectFrom(ctx)
	first := true
	_, err = (&reqlog.Reader{Dir: a.requestLogDir()}).ReadFrom(1, func(r reqlog.Record) bool {
		if first {
			first = false
			// Records before the first one left were deleted by the
			// request log's retention: say so when the scope wanted them.
			if r.Seq > 1 && (o.All || out.From.Before(r.Time)) {
				out.PrunedBefore = r.Time
			}
		}
		if r.Model == model && recordProject(r) == project && deployVariant(r.Variant) && !r.Time.Before(out.From) &&
			(out.To.IsZero() || r.Time.Before(out.To)) {
			recs = append(recs, r)
		}
		return true
	})
	if err != nil {
		return out, err
	}
	out.Records = len(recs)
	ids := make([]string, 0, len(recs))
	seen := map[string]bool{}
	for _, r := range recs {
		if !seen[r.RequestID] {
			seen[r.RequestID] = true
			ids = append(ids, r.RequestID)
		}
	}
	fbs, err := a.store.Feedbacks(ctx, ids)
	if err != nil {
		return out, err
	}
	feedback := make(map[string]store.Feedback, len(fbs))
	for _, f := range fbs {
		feedback[f.RequestID] = f
	}
	canary, shadow := compareRecords(recs, feedback)
	if canary.Other.Requests > 0 || (scoped != nil && scoped.Canary != nil) {
		out.Canary = &canary
	}
	if shadow.Other.Requests > 0 || (scoped != nil && scoped.Shadow != "") {
		out.Shadow = &shadow
	}
	return out, nil
}

func deployVariant(v string) bool {
	return v == serve.VariantPrimary || v == serve.VariantCanary || v == serve.VariantShadow
}

// compareRecords computes a deployment's comparisons from its request-log
// records. Primary vs canary: every request each answered (a canary and
// the primary answer different requests, so nothing is paired). Primary
// vs shadow: the requests with both a primary and a shadow record; a pair
// agrees when both succeeded with the same label (classify) or the same
// text (completions). Accuracy counts successful answers that match the
// request's feedback.
func compareRecords(recs []reqlog.Record, feedback map[string]store.Feedback) (canary, shadow api.VariantComparison) {
	var primary, canaries []reqlog.Record
	shadows := map[string]reqlog.Record{}
	for _, r := range recs {
		switch r.Variant {
		case serve.VariantPrimary:
			primary = append(primary, r)
		case serve.VariantCanary:
			canaries = append(canaries, r)
		case serve.VariantShadow:
			shadows[r.RequestID] = r
		}
	}
	canary = api.VariantComparison{Primary: variantStats(serve.VariantPrimary, primary, feedback),
		Other: variantStats(serve.VariantCanary, canaries, feedback)}

	var paired, mirrored []reqlog.Record
	for _, p := range primary {
		if s, ok := shadows[p.RequestID]; ok {
			paired, mirrored = append(paired, p), append(mirrored, s)
		}
	}
	shadow = api.VariantComparison{Primary: variantStats(serve.VariantPrimary, paired, feedback),
		Other: variantStats(serve.VariantShadow, mirrored, feedback)}
	for i, p := range paired {
		s := mirrored[i]
		if !ok(p) || !ok(s) {
			continue
		}
		shadow.Paired++
		if sameAnswer(p, s) {
			shadow.Agreed++
		}
	}
	shadow.Agreement = ratio(shadow.Agreed, shadow.Paired)
	return canary, shadow
}

func ok(r reqlog.Record) bool { return r.Status == 200 }

// sameAnswer: the same label for classify, the same text otherwise.
func sameAnswer(a, b reqlog.Record) bool {
	if a.Endpoint != b.Endpoint {
		return false
	}
	if a.Endpoint == "classify" {
		return a.Label == b.Label
	}
	return a.Output == b.Output
}

// variantStats counts recs, their errors, latency percentiles and, on
// those with feedback, how many answers match it.
func variantStats(variant string, recs []reqlog.Record, feedback map[string]store.Feedback) api.VariantStats {
	s := api.VariantStats{Variant: variant, Versions: []string{}, Requests: len(recs)}
	var lat []float64
	for _, r := range recs {
		if r.Version != "" && !slices.Contains(s.Versions, r.Version) {
			s.Versions = append(s.Versions, r.Version)
		}
		if !ok(r) {
			s.Errors++
			continue
		}
		lat = append(lat, r.LatencyMS)
		f, has := feedback[r.RequestID]
		if !has {
			continue
		}
		s.Labelled++
		if (r.Endpoint == "classify" && f.Label != "" && r.Label == f.Label) || (r.Endpoint != "classify" && f.Completion != "" && r.Output == f.Completion) {
			s.Correct++
		}
	}
	slices.Sort(s.Versions)
	s.LatencyP50MS, s.LatencyP95MS = percentile(lat, 0.50), percentile(lat, 0.95)
	s.Accuracy = ratio(s.Correct, s.Labelled)
	return s
}

// percentile is the nearest-rank percentile: the smallest value with at
// least p of the values at or below it (0 for none).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	k := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[max(0, min(k, len(xs)-1))]
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

// recordProject is the project a request log record was served in; records
// from before projects were all the default project's.
func recordProject(r reqlog.Record) string {
	if r.Project == "" {
		return store.DefaultProject
	}
	return r.Project
}
