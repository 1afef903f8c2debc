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

// FuzzDeliver feeds an attempt batches at arbitrary sequence numbers, as a
// worker retrying after lost answers might: every message is delivered
// exactly once and in order, a batch past the next number is refused, and
// Next never goes back.
func FuzzDeliver(f *testing.F) {
	f.Add([]byte{0, 3, 0, 3, 2, 4, 9, 1})
	f.Add([]byte{1, 1})
	f.Add([]byte{0, 0, 0, 200})
	f.Fuzz(func(t *testing.T, ops []byte) {
		rem := NewRemote(auth.NewWorkerCredentials(auth.WorkerOptions{}), nil)
		att, _, err := rem.Open(Spec{RunID: "r", Attempt: 1})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for m := range att.Messages() {
				got = append(got, m.Step)
			}
		}()
		var next int64
		for i := 0; i+1 < len(ops); i += 2 {
			seq, n := int64(ops[i]), int(ops[i+1])
			b := Batch{Seq: seq}
			for k := 0; k < n; k++ {
				b.Messages = append(b.Messages, Message{Type: MsgProgress, Step: seq + int64(k)})
			}
			ack, err := rem.Deliver(context.Background(), "r", 1, b)
			if seq > next {
				if !errors.Is(err, errs.ErrInvalid) || ack.Next != next {
					t.Fatalf("batch at %d past next %d: ack %d, err %v", seq, next, ack.Next, err)
				}
				continue
			}
			if err != nil || ack.Next < next || ack.Next != max(next, seq+int64(n)) {
				t.Fatalf("batch %d+%d at next %d: ack %d, err %v", seq, n, next, ack.Next, err)
			}
			next = ack.Next
		}
		att.Close()
		<-done
		if int64(len(got)) != next {
			t.Fatalf("%d messages delivered, next is %d", len(got), next)
		}
		for i, s := range got {
			if s != int64(i) {
				t.Fatalf("message %d carries step %d: delivered twice or out of order", i, s)
			}
		}
	})
}
