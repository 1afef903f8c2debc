package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/specyaml"
	"github.com/tailor-ml/tailor/internal/store"
)

// A deployment version committed by another writer reaches serving through
// its deployment.changed event alone, and a stale event (an older
// version's, arriving late) never brings back the older policy.
func TestDeploymentFollowsEvents(t *testing.T) {
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		a.Close()
	}()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	put := func(d deploymentDoc) store.Event {
		t.Helper()
		norm, _ := json.Marshal(d)
		id := specyaml.ID(norm)
		_, evs, err := a.store.PutSpec(ctx, store.SpecVersion{Kind: specDeployment, ID: id, Name: d.Model, Normalized: norm},
			[]store.Event{a.event(EventDeploymentChanged, id, map[string]any{"name": d.Model, "id": id})})
		if err != nil {
			t.Fatal(err)
		}
		return evs[0]
	}
	// wait publishes ev until serving has a deployment with shadow want
	// (the follower subscribes some time after Start returns, and sees
	// only what is published after that; it handles each seq once).
	wait := func(ev store.Event, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			a.bus.Publish(ev)
			ds := a.serve.Deployments(context.Background())
			if len(ds) == 1 && ds[0].Shadow == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("served deployments %+v, want shadow %q", ds, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	first := put(deploymentDoc{Deployment: serve.Deployment{Model: "spam", Alias: "champion", Shadow: "spam@v2"}, Action: deploySet, Actor: "other"})
	wait(first, "spam@v2")
	second := put(deploymentDoc{Deployment: serve.Deployment{Model: "spam", Alias: "champion", Shadow: "spam@v3"}, Action: deploySet, Actor: "other", Parent: first.Subject})
	wait(second, "spam@v3")
	stale := first
	stale.Seq = second.Seq + 1000 // redelivered after the newer one
	a.bus.Publish(stale)
	time.Sleep(100 * time.Millisecond)
	wait(stale, "spam@v3")
}
