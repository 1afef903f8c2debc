package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

// registryFixture populates the real resolver through the store and the
// registry, as imports and runs do.
type registryFixture struct {
	*resolver
	n int
}

func (f *registryFixture) AddBase(t *testing.T, name string) {
	_, _, err := f.store.PutBaseVersion(context.Background(), store.BaseVersion{ID: baseID(name), Name: name, Arch: "LlamaForCausalLM",
		Manifest: "sha256:m-" + name, Region: "local", CreatedAt: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func (f *registryFixture) AddVersion(t *testing.T, model, base string) string {
	f.n++
	adapter := "sha256:" + baseID(fmt.Sprintf("adapter-%d", f.n))
	if _, _, err := f.registry.Register(context.Background(), store.ModelVersion{Name: model, BaseID: baseID(base), Adapter: adapter, Task: "classify"}); err != nil {
		t.Fatal(err)
	}
	return adapter
}

func (f *registryFixture) SetAlias(t *testing.T, model, alias string, v int) {
	_, err := f.registry.Promote(context.Background(), registry.PromoteRequest{Name: model, Version: fmt.Sprintf("v%d", v), Alias: alias,
		Reason: "conformance", Actor: "test", Override: true, OverrideReason: "no eval report in this test"})
	if err != nil {
		t.Fatal(err)
	}
}

// baseID is a fingerprint-shaped id for a test base.
func baseID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func TestResolverConformance(t *testing.T) {
	servetest.RunResolver(t, func(t *testing.T) servetest.ResolverFixture {
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return &registryFixture{resolver: &resolver{store: st, registry: registry.New(registry.Options{Store: st}),
			residency: residencyCheck{policy: residency.Default("local"), region: "local"}}}
	})
}
