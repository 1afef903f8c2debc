package run

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestKeyIncremental(t *testing.T) {
	plain := Inputs{Recipe: InputRef{ID: "r"}, Dataset: InputRef{ID: "d"}, Base: InputRef{ID: "b"}, Engine: "e",
		Champion: InputRef{ID: "c1"}}
	// A plain run's key is what it always was: the champion is not in it.
	h := sha256.New()
	for _, s := range []string{"tailor-run-key/1", "r", "d", "b", "e"} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if got, want := Key(plain), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("plain key %s, want %s", got, want)
	}
	inc := plain
	inc.Init = InputRef{ID: "mv1", Manifest: "a1"}
	inc.Replay, inc.Forgetting = InputRef{ID: "d0"}, InputRef{ID: "d0"}
	same := inc
	if Key(inc) == Key(plain) || Key(inc) != Key(same) {
		t.Fatal("an incremental run's key must differ from the plain run's and be stable")
	}
	ev := Inputs{Kind: KindEval, Model: InputRef{ID: "mv2"}, Dataset: InputRef{ID: "d"}, Split: "test", Recipe: InputRef{ID: "r"}, Engine: "e"}
	evInc := ev
	evInc.Init, evInc.Forgetting = inc.Init, inc.Forgetting
	if Key(ev) == Key(evInc) {
		t.Error("an eval run with a forgetting gate must not reuse the key of one without")
	}
	for name, edit := range map[string]func(*Inputs){
		"new champion":       func(in *Inputs) { in.Init = InputRef{ID: "mv2", Manifest: "a2"} },
		"replay version":     func(in *Inputs) { in.Replay.ID = "d1" },
		"forgetting version": func(in *Inputs) { in.Forgetting.ID = "d1" },
	} {
		other := inc
		edit(&other)
		if Key(other) == Key(inc) {
			t.Errorf("%s: same key", name)
		}
	}
}
