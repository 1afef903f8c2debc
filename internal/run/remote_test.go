package run

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/errs"
)

func TestRemoteAttempts(t *testing.T) {
	ctx := context.Background()
	rem := NewRemote(auth.NewWorkerCredentials(auth.WorkerOptions{}), nil)
	a1, tok1, err := rem.Open(Spec{RunID: "run-a", Attempt: 1, Blob: "file:///b"})
	if err != nil {
		t.Fatal(err)
	}
	_, tokB, _ := rem.Open(Spec{RunID: "run-b", Attempt: 1})

	if n, err := rem.Authenticate("Bearer "+tok1, "run-a"); err != nil || n != 1 {
		t.Fatalf("Authenticate = %d, %v", n, err)
	}
	if _, err := rem.Authenticate("Bearer "+tokB, "run-a"); !errors.Is(err, errs.ErrForbidden) {
		t.Fatalf("run-b's credential on run-a: %v", err)
	}
	if _, err := rem.Authenticate(tok1, "run-a"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("no Bearer scheme: %v", err)
	}
	if s, err := rem.Spec("run-a", 1); err != nil || s.Blob != "file:///b" {
		t.Fatalf("Spec = %+v, %v", s, err)
	}

	// Messages 0 and 1; then 1 and 2 again (the answer was lost): 1 is
	// skipped. A gap is refused. The error message is kept, not delivered.
	steps := []struct {
		b        Batch
		next     int64
		wantKind error
	}{
		{Batch{Seq: 0, Messages: []Message{{Type: MsgProgress, Step: 1}, {Type: MsgCheckpoint, Step: 1, Digest: "sha256:c1"}}}, 2, nil},
		{Batch{Seq: 1, Messages: []Message{{Type: MsgCheckpoint, Step: 1, Digest: "sha256:c1"}, {Type: MsgLog, Message: "hello"}}}, 3, nil},
		{Batch{Seq: 5, Messages: []Message{{Type: MsgLog}}}, 3, errs.ErrInvalid},
		{Batch{Seq: 3, Messages: []Message{{Type: MsgError, Message: "dataset d: record 7: bad label"}}}, 4, nil},
	}
	for i, st := range steps {
		ack, err := rem.Deliver(ctx, "run-a", 1, st.b)
		if (st.wantKind == nil) != (err == nil) || (err != nil && !errors.Is(err, st.wantKind)) || ack.Next != st.next {
			t.Fatalf("batch %d: ack %+v, err %v; want next %d, err kind %v", i, ack, err, st.next, st.wantKind)
		}
	}
	var got []string
	for len(a1.Messages()) > 0 {
		m := <-a1.Messages()
		got = append(got, m.Type)
	}
	if strings.Join(got, ",") != "progress,checkpoint,log" {
		t.Fatalf("delivered %v", got)
	}
	if a1.Failure() != "dataset d: record 7: bad label" {
		t.Fatalf("failure %q", a1.Failure())
	}

	// A new attempt of run-a closes attempt 1: its credential stops
	// working and its messages channel closes.
	_, tok2, _ := rem.Open(Spec{RunID: "run-a", Attempt: 2})
	if _, ok := <-a1.Messages(); ok {
		t.Fatal("attempt 1 still open")
	}
	if _, err := rem.Authenticate("Bearer "+tok1, "run-a"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("attempt 1's credential after attempt 2 opened: %v", err)
	}
	if _, err := rem.Deliver(ctx, "run-a", 1, Batch{Seq: 4}); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("post to attempt 1: %v", err)
	}
	if n, err := rem.Authenticate("Bearer "+tok2, "run-a"); err != nil || n != 2 {
		t.Fatalf("attempt 2: %d, %v", n, err)
	}
}
