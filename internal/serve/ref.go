package serve

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
)

// Ref is a parsed model address, "name" or "name@ref" in the one grammar
// of ident.ParseAddress: a bare name serves a base alone, else the model's
// champion, else its latest version; "@" takes a version (v3 or 3), an id
// or its prefix, an alias, or latest.
type Ref = ident.Address

// ParseRef reads a model address; errors wrap errs.ErrInvalid.
func ParseRef(s string) (Ref, error) { return ident.ParseAddress("model", s) }

// Target is what a reference resolves to: a base version and an optional
// adapter, and what serving needs to know about them.
type Target struct {
	Model     string // model (or base) name
	Version   int    // version number within Model
	VersionID string // content id of the model version (or base id)
	// BaseID is the base version id; BaseManifest the blob digest of its
	// basemodel.Manifest (what a Loader materializes).
	BaseID       string
	BaseManifest string
	// Adapter is the blob digest of the adapter manifest; "" serves the
	// base alone.
	Adapter string
	Task    string   // "classify", "sft", … ("" for a base)
	Labels  []string // optional; the adapter manifest's labels win
}

// VersionName is what X-Tailor-Model-Version reports: "name@vN".
func (t Target) VersionName() string { return fmt.Sprintf("%s@v%d", t.Model, t.Version) }

// ModelEntry is one servable id for GET /v1/models.
type ModelEntry struct {
	ID      string // "tailor-tiny", "spam-lora@champion", "spam-lora@v3"
	OwnedBy string
	Created int64 // unix seconds
	Target  Target
}

// Resolver maps model addresses to targets. The composition root implements
// it over the registry and the store; MemResolver is an in-memory one.
type Resolver interface {
	// Resolve returns the target of ref, or an error wrapping
	// errs.ErrNotFound. A bare name is a base when a base has that name,
	// else the model's champion alias, else its latest version.
	Resolve(ctx context.Context, ref Ref) (Target, error)
	// Models lists every servable id.
	Models(ctx context.Context) ([]ModelEntry, error)
}

// MemResolver is a Resolver held in memory, safe for concurrent use.
type MemResolver struct {
	mu       sync.RWMutex
	bases    map[string]Target
	versions map[string][]Target       // model name → versions (index = number-1)
	aliases  map[string]map[string]int // model name → alias → version number
}

// NewMemResolver returns an empty resolver.
func NewMemResolver() *MemResolver {
	return &MemResolver{bases: map[string]Target{}, versions: map[string][]Target{}, aliases: map[string]map[string]int{}}
}

// AddBase registers a base served alone under t.Model.
func (r *MemResolver) AddBase(t Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.Version == 0 {
		t.Version = 1
	}
	r.bases[t.Model] = t
}

// AddVersion appends a version of t.Model and returns it with its number.
func (r *MemResolver) AddVersion(t Target) Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Version = len(r.versions[t.Model]) + 1
	r.versions[t.Model] = append(r.versions[t.Model], t)
	return t
}

// SetAlias points name@alias at version number v.
func (r *MemResolver) SetAlias(name, alias string, v int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v < 1 || v > len(r.versions[name]) {
		return errs.NotFound("model %s has no version v%d", name, v)
	}
	if r.aliases[name] == nil {
		r.aliases[name] = map[string]int{}
	}
	r.aliases[name][alias] = v
	return nil
}

// Resolve implements Resolver.
func (r *MemResolver) Resolve(_ context.Context, ref Ref) (Target, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.versions[ref.Name]
	switch {
	case !ref.HasRef:
		if b, ok := r.bases[ref.Name]; ok {
			return b, nil
		}
		if v, ok := r.aliases[ref.Name]["champion"]; ok {
			return vs[v-1], nil
		}
		if len(vs) > 0 {
			return vs[len(vs)-1], nil
		}
	case ref.Ref.Kind == ident.RefVersion:
		if ref.Ref.Version <= len(vs) {
			return vs[ref.Ref.Version-1], nil
		}
	case ref.Ref.Kind == ident.RefLatest && len(vs) > 0:
		return vs[len(vs)-1], nil
	case ref.Ref.Kind == ident.RefAlias:
		if v, ok := r.aliases[ref.Name][ref.Ref.Alias]; ok {
			return vs[v-1], nil
		}
	case ref.Ref.Kind == ident.RefID:
		var found []Target
		for _, v := range vs {
			if strings.HasPrefix(v.VersionID, ref.Ref.ID) {
				found = append(found, v)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return Target{}, errs.Invalid("model %q: %d versions have ids starting so; write more of the id", ref.String(), len(found))
		}
	}
	return Target{}, errs.NotFound("model %q does not exist", ref.String())
}

// Models implements Resolver.
func (r *MemResolver) Models(_ context.Context) ([]ModelEntry, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []ModelEntry
	for name, b := range r.bases {
		out = append(out, ModelEntry{ID: name, OwnedBy: "tailor", Target: b})
	}
	for name, vs := range r.versions {
		for _, v := range vs {
			out = append(out, ModelEntry{ID: v.VersionName(), OwnedBy: "tailor", Target: v})
		}
		for alias, n := range r.aliases[name] {
			out = append(out, ModelEntry{ID: name + "@" + alias, OwnedBy: "tailor", Target: vs[n-1]})
		}
		if _, isBase := r.bases[name]; !isBase && len(vs) > 0 {
			bare := vs[len(vs)-1]
			if n, ok := r.aliases[name]["champion"]; ok {
				bare = vs[n-1]
			}
			out = append(out, ModelEntry{ID: name, OwnedBy: "tailor", Target: bare})
		}
	}
	slices.SortFunc(out, func(a, b ModelEntry) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

var _ Resolver = (*MemResolver)(nil)
