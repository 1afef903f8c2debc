package worker

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/run"
)

// remoteRecipe is a small SFT run with a checkpoint every 3 steps.
const remoteRecipe = `name: remote-sft
task: sft
base: b
data:
  dataset: d
method:
  kind: lora
  lora:
    rank: 4
train:
  max_steps: 6
  batch_size: 4
  learning_rate: 0.01
  checkpoint_every: 3
seed: 9
region: local
`

func remoteRecords() string {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "{\"id\":\"s%d\",\"prompt\":\"ticket %d from team %d\",\"completion\":\"team %d\"}\n", i, i, i%3, i%3)
	}
	return b.String()
}

// TestRemoteWorker: a worker that reaches a real API server on loopback
// (httpapi's worker routes over run.Remote) trains the same adapter as a
// local one, its messages arrive on the attempt, and a credential of
// another run or a user token gets nothing.
func TestRemoteWorker(t *testing.T) {
	spec := setup(t, "sft", remoteRecords(), remoteRecipe)
	local := result(t, runWorker(t, spec))

	rem := run.NewRemote(auth.NewWorkerCredentials(auth.WorkerOptions{}), nil)
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Workers: rem}))
	defer srv.Close()

	spec.Attempt = 1
	att, token, err := rem.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := rem.Open(run.Spec{RunID: "run-other", Attempt: 1})
	var got []run.Message
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range att.Messages() {
			got = append(got, m)
		}
	}()

	// Refused: another run's credential, a user token's shape, none.
	for _, tok := range []string{other, "tlr_" + strings.TrimPrefix(token, "tlw_"), ""} {
		err := TrainRemote(context.Background(), RemoteOptions{API: srv.URL, RunID: spec.RunID, Token: tok, WorkDir: t.TempDir()}, Options{})
		if err == nil {
			t.Fatalf("token %.8q… was accepted", tok)
		}
	}

	err = TrainRemote(context.Background(), RemoteOptions{API: srv.URL, RunID: spec.RunID, Token: token, WorkDir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	att.Close()
	<-done
	res := result(t, got)
	if res.Digest != local.Digest || res.Step != 6 {
		t.Fatalf("remote worker: step %d adapter %s; local worker: adapter %s", res.Step, res.Digest, local.Digest)
	}
	var kinds []string
	for _, m := range got {
		kinds = append(kinds, m.Type)
	}
	if all := strings.Join(kinds, ","); strings.Count(all, run.MsgCheckpoint) != 2 || !strings.Contains(all, run.MsgProgress) {
		t.Fatalf("messages %s", all)
	}
	// The attempt is over: its credential no longer fetches the spec.
	err = TrainRemote(context.Background(), RemoteOptions{API: srv.URL, RunID: spec.RunID, Token: token, WorkDir: t.TempDir()}, Options{})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("after the attempt ended: %v", err)
	}
}

// TestRemoteWorkerReportsFailure: a remote worker that fails posts its
// error (run.MsgError) before exiting, so the server can tell a failure
// from a lost worker.
func TestRemoteWorkerReportsFailure(t *testing.T) {
	spec := setup(t, "sft", remoteRecords(), remoteRecipe)
	spec.Inputs.Base.Manifest = "" // the recipe needs a base the spec does not name
	spec.Attempt = 1
	rem := run.NewRemote(auth.NewWorkerCredentials(auth.WorkerOptions{}), nil)
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Workers: rem}))
	defer srv.Close()
	att, token, err := rem.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	err = TrainRemote(context.Background(), RemoteOptions{API: srv.URL, RunID: spec.RunID, Token: token, WorkDir: t.TempDir()}, Options{})
	if err == nil {
		t.Fatal("no error")
	}
	if f := att.Failure(); f == "" || !strings.Contains(f, "selects base") {
		t.Fatalf("failure reported %q, worker error %v", f, err)
	}
}
