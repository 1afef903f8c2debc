package serve_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

// memFixture lets the in-memory resolver run the conformance suite.
type memFixture struct {
	*serve.MemResolver
	n int
}

func (m *memFixture) AddBase(t *testing.T, name string) {
	m.MemResolver.AddBase(serve.Target{Model: name, VersionID: "base-" + name, BaseID: "base-" + name, BaseManifest: "sha256:m-" + name})
}

func (m *memFixture) AddVersion(t *testing.T, model, base string) string {
	m.n++
	adapter := fmt.Sprintf("sha256:adapter-%d", m.n)
	id := sha256.Sum256([]byte(adapter))
	m.MemResolver.AddVersion(serve.Target{Model: model, VersionID: hex.EncodeToString(id[:]), BaseID: "base-" + base, BaseManifest: "sha256:m-" + base, Adapter: adapter})
	return adapter
}

func (m *memFixture) SetAlias(t *testing.T, model, alias string, v int) {
	if err := m.MemResolver.SetAlias(model, alias, v); err != nil {
		t.Fatal(err)
	}
}

func TestMemResolverConformance(t *testing.T) {
	servetest.RunResolver(t, func(t *testing.T) servetest.ResolverFixture { return &memFixture{MemResolver: serve.NewMemResolver()} })
}
