package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
)

// Variants: which part of a deployment answered a request, as the request
// log, the metrics and the Observer name it.
const (
	VariantPrimary = "primary" // Model@Alias
	VariantCanary  = "canary"  // the canary's share of requests
	VariantShadow  = "shadow"  // a mirrored copy; its answer is never returned
)

// Deployment says how requests for a bare model name are served: by the
// primary, Model@Alias; optionally a canary answers Percent of them, and
// optionally a shadow gets a copy of every request, whose answer is logged
// and counted but never returned. A request that names a version or alias
// (model@ref) bypasses the deployment.
type Deployment struct {
	Model string `json:"model"`
	// Alias is the primary's alias (default "champion").
	Alias  string  `json:"alias,omitempty"`
	Canary *Canary `json:"canary,omitempty"`
	// Shadow is a model address with a reference ("spam@v4").
	Shadow string `json:"shadow,omitempty"`
}

// Canary is a version competing for a deployment's alias.
type Canary struct {
	// Model is a version of the deployment's model: "spam@v3", an id or
	// another alias.
	Model string `json:"model"`
	// Percent is its share of requests, in (0, 100).
	Percent float64 `json:"percent"`
}

// Primary is the primary's address, "model@alias".
func (d Deployment) Primary() string { return d.Model + "@" + d.Alias }

// Check validates d, fills its defaults and canonicalizes its addresses.
// Errors name the field.
func (d *Deployment) Check() error {
	if r, err := ParseRef(d.Model); err != nil || r.HasRef {
		return errs.Invalid("deployment: field \"model\" %q must be a bare model name (%s)", d.Model, ident.NameRule)
	}
	if d.Alias == "" {
		d.Alias = "champion"
	}
	if err := ident.CheckAliasName(d.Alias); err != nil {
		return errs.Invalid("deployment %s: field \"alias\": %v", d.Model, err)
	}
	if c := d.Canary; c != nil {
		a, err := ParseRef(c.Model)
		switch {
		case err != nil:
			return errs.Invalid("deployment %s: field \"canary.model\": %v", d.Model, err)
		case !a.HasRef:
			return errs.Invalid("deployment %s: field \"canary.model\" %q names no version; write %s@v<N> (or an id or alias)", d.Model, c.Model, d.Model)
		case a.Name != d.Model:
			return errs.Invalid("deployment %s: field \"canary.model\" %q is not a version of %s; a canary competes for %s's alias, so it must be one", d.Model, c.Model, d.Model, d.Model)
		case a.String() == d.Primary():
			return errs.Invalid("deployment %s: field \"canary.model\" %q is the primary itself; name another version", d.Model, c.Model)
		case !(c.Percent > 0 && c.Percent < 100):
			return errs.Invalid("deployment %s: field \"canary.percent\" %g must be above 0 and below 100", d.Model, c.Percent)
		}
		c.Model = a.String()
	}
	if d.Shadow != "" {
		a, err := ParseRef(d.Shadow)
		switch {
		case err != nil:
			return errs.Invalid("deployment %s: field \"shadow\": %v", d.Model, err)
		case !a.HasRef:
			return errs.Invalid("deployment %s: field \"shadow\" %q names no version; write name@v<N> (or an id or alias)", d.Model, d.Shadow)
		case a.String() == d.Primary():
			return errs.Invalid("deployment %s: field \"shadow\" %q is the primary itself; name another version", d.Model, d.Shadow)
		}
		d.Shadow = a.String()
	}
	return nil
}

// ParseDeployments reads a JSON array of deployments; errors name the
// entry and field.
func ParseDeployments(src []byte) ([]Deployment, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	var ds []Deployment
	if err := dec.Decode(&ds); err != nil {
		return nil, errs.Invalid("deployments: %v", err)
	}
	seen := map[string]bool{}
	for i := range ds {
		if err := ds[i].Check(); err != nil {
			return nil, fmt.Errorf("deployments[%d]: %w", i, err)
		}
		if seen[ds[i].Model] {
			return nil, errs.Invalid("deployments[%d]: model %q is deployed twice", i, ds[i].Model)
		}
		seen[ds[i].Model] = true
	}
	return ds, nil
}

// Deploy sets (or replaces) the deployment of d.Model in ctx's scope.
func (s *Server) Deploy(ctx context.Context, d Deployment) error {
	if err := d.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployments[scopedKey(s.scope(ctx), d.Model)] = d
	return nil
}

// Undeploy removes the deployment of model in ctx's scope; bare requests
// resolve as usual.
func (s *Server) Undeploy(ctx context.Context, model string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.deployments, scopedKey(s.scope(ctx), model))
}

// Deployments lists the deployments of ctx's scope by model name.
func (s *Server) Deployments(ctx context.Context) []Deployment {
	prefix := scopedKey(s.scope(ctx), "")
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Deployment
	for k, d := range s.deployments {
		if strings.HasPrefix(k, prefix) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Deployment) int { return strings.Compare(a.Model, b.Model) })
	return out
}

// routed is where a request goes.
type routed struct {
	model   *Loaded
	variant string  // VariantPrimary or VariantCanary; "" without a deployment
	shadow  *Loaded // mirrored copy's model, or nil
	// label is the model label of the request's metrics: the requested
	// address in canonical form, which resolved, so the label set is
	// bounded by what the registry holds.
	label string
}

// route resolves the requested id through the model's deployment.
func (s *Server) route(ctx context.Context, id, user string) (routed, error) {
	ref, err := ParseRef(id)
	if err != nil {
		return routed{}, errs.NotFound("%v", err)
	}
	s.mu.RLock()
	d, ok := s.deployments[scopedKey(s.scope(ctx), ref.Name)]
	s.mu.RUnlock()
	if !ok || ref.HasRef {
		l, err := s.resolve(ctx, ref)
		if err != nil {
			return routed{}, err
		}
		return routed{model: l, label: ref.String()}, nil
	}
	r := routed{label: ref.String()}
	if c := d.Canary; c != nil && s.canaryPick(d.Model, user, c.Percent) {
		if l, err := s.resolveAddr(ctx, c.Model); err == nil {
			r.model, r.variant = l, VariantCanary
			s.metrics.count(s.metrics.canary, "served")
		} else {
			// The canary is an experiment: when it cannot be served, the
			// primary answers.
			s.metrics.count(s.metrics.canary, "fallback")
			s.opts.Logger.Warn("canary unavailable; the primary answers", "model", d.Model, "canary", c.Model, "err", err)
		}
	}
	if r.model == nil {
		l, err := s.resolveAddr(ctx, d.Primary())
		if err != nil {
			return routed{}, err
		}
		r.model, r.variant = l, VariantPrimary
	}
	if d.Shadow != "" {
		if sh, err := s.resolveAddr(ctx, d.Shadow); err == nil {
			r.shadow = sh
		} else {
			s.metrics.count(s.metrics.shadow, "unresolved")
		}
	}
	return r, nil
}

// resolveAddr resolves a model address that Deployment.Check accepted.
func (s *Server) resolveAddr(ctx context.Context, addr string) (*Loaded, error) {
	ref, err := ParseRef(addr)
	if err != nil {
		return nil, err
	}
	return s.resolve(ctx, ref)
}

// canaryPick reports whether a request goes to the canary: by a hash of
// the user key when there is one (the same user always gets the same
// variant), else from the server's seeded source.
func (s *Server) canaryPick(model, user string, percent float64) bool {
	if user != "" {
		h := sha256.Sum256([]byte(model + "\x00" + user))
		return float64(binary.BigEndian.Uint64(h[:8])%10000) < percent*100
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()*100 < percent
}
