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

// Policy kinds.
const (
	PolicyAll    = "all"    // every request to one alias
	PolicyCanary = "canary" // Percent of requests to the challenger
	PolicyShadow = "shadow" // champion answers; challenger gets a mirrored copy
)

// Policy is a deployment's traffic policy.
type Policy struct {
	Kind string `json:"kind"`
	// Alias is what PolicyAll serves (default "champion").
	Alias string `json:"alias,omitempty"`
	// Percent is the canary's share of requests for the challenger, 0-100.
	Percent    float64 `json:"percent,omitempty"`
	Champion   string  `json:"champion,omitempty"`   // default "champion"
	Challenger string  `json:"challenger,omitempty"` // default "challenger"
}

// Deployment serves a model name (requests that name it bare) with a policy.
type Deployment struct {
	Model  string `json:"model"`
	Policy Policy `json:"policy"`
}

// Check validates d and fills its defaults.
func (d *Deployment) Check() error {
	if r, err := ParseRef(d.Model); err != nil || r.HasRef {
		return errs.Invalid("deployment: field \"model\" %q must be a bare model name", d.Model)
	}
	p := &d.Policy
	if p.Champion == "" {
		p.Champion = "champion"
	}
	if p.Challenger == "" {
		p.Challenger = "challenger"
	}
	for field, a := range map[string]string{"champion": p.Champion, "challenger": p.Challenger, "alias": p.Alias} {
		if _, err := ident.ParseRef(a); a != "" && err != nil {
			return errs.Invalid("deployment %s: field \"policy.%s\" %q is not an alias or version", d.Model, field, a)
		}
	}
	switch p.Kind {
	case PolicyAll:
		if p.Alias == "" {
			p.Alias = p.Champion
		}
	case PolicyCanary:
		if p.Percent < 0 || p.Percent > 100 {
			return errs.Invalid("deployment %s: field \"policy.percent\" %g must be in [0, 100]", d.Model, p.Percent)
		}
	case PolicyShadow:
	default:
		return errs.Invalid("deployment %s: field \"policy.kind\" %q: use all, canary or shadow", d.Model, p.Kind)
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

// Deploy sets (or replaces) the policy for d.Model.
func (s *Server) Deploy(d Deployment) error {
	if err := d.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployments[d.Model] = d
	return nil
}

// Undeploy removes the policy of model; bare requests resolve as usual.
func (s *Server) Undeploy(model string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.deployments, model)
}

// Deployments lists the deployments by model name.
func (s *Server) Deployments() []Deployment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Deployment
	for _, d := range s.deployments {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Deployment) int { return strings.Compare(a.Model, b.Model) })
	return out
}

// routed is where a request goes.
type routed struct {
	model   *Loaded
	variant string  // "champion", "challenger" or "" without a policy
	shadow  *Loaded // mirrored copy's model, or nil
}

// route resolves the requested id through the deployment's policy.
func (s *Server) route(ctx context.Context, id, user string) (routed, error) {
	ref, err := ParseRef(id)
	if err != nil {
		return routed{}, errs.NotFound("%v", err)
	}
	s.mu.RLock()
	d, ok := s.deployments[ref.Name]
	s.mu.RUnlock()
	if !ok || ref.HasRef {
		l, err := s.resolve(ctx, ref)
		return routed{model: l}, err
	}
	alias := func(a string) Ref { r, _ := ParseRef(d.Model + "@" + a); return r }
	p := d.Policy
	switch p.Kind {
	case PolicyAll:
		l, err := s.resolve(ctx, alias(p.Alias))
		return routed{model: l, variant: p.Alias}, err
	case PolicyCanary:
		v := p.Champion
		if s.canaryPick(d.Model, user, p.Percent) {
			v = p.Challenger
		}
		l, err := s.resolve(ctx, alias(v))
		return routed{model: l, variant: v}, err
	}
	l, err := s.resolve(ctx, alias(p.Champion))
	if err != nil {
		return routed{}, err
	}
	r := routed{model: l, variant: p.Champion}
	if sh, err := s.resolve(ctx, alias(p.Challenger)); err == nil {
		r.shadow = sh
	} else {
		s.metrics.count(s.metrics.shadow, "unresolved")
	}
	return r, nil
}

// canaryPick reports whether a request goes to the challenger: by a hash of
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
