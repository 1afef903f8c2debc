package store_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
)

// TestAuditHashIsPinned holds the documented serialization against values
// computed independently (Python hashlib over the netstrings of
// docs/security.md), so a change of format cannot pass unnoticed.
func TestAuditHashIsPinned(t *testing.T) {
	ev := store.Event{Type: "model.alias.moved", Subject: "spam", Data: json.RawMessage(`{"to":"mv-2"}`)}
	after := store.AuditAfter(ev)
	if want := "ac9ee55aede00a7c125eff170f0021f753d8ef1373934c33a360c1fd9362f71a"; after != want {
		t.Fatalf("AuditAfter = %s, want %s", after, want)
	}
	e := store.AuditEntry{Seq: 7, Time: time.Date(2025, 3, 14, 16, 9, 26, 535897932, time.FixedZone("X", 3600)),
		Actor: "ana", Project: "default", Action: ev.Type, ObjectKind: "model", ObjectID: "spam", EventSeq: 42,
		After: after, PrevHash: strings.Repeat("ab", 32)}
	if got, want := store.AuditHash(e), "6cdfcbb197b086cb0b41afec6f8e5e21fa694541e3f7aad02b954059e6a9d98b"; got != want {
		t.Fatalf("AuditHash = %s, want %s", got, want)
	}
}

// chain builds n valid entries over two objects.
func chain(n int) []store.AuditEntry {
	var out []store.AuditEntry
	prev := ""
	last := map[string]string{}
	for i := range n {
		id := []string{"a", "b"}[i%2]
		ev := store.Event{Type: "run.state.changed", Subject: id, Data: json.RawMessage(`{"i":` + string(rune('0'+i)) + `}`)}
		e := store.AuditEntry{Seq: int64(i + 1), Time: time.Date(2025, 1, 1, 0, i, 0, 0, time.UTC), Actor: "ana",
			Project: "default", Action: ev.Type, ObjectKind: "run", ObjectID: id, EventSeq: int64(10 + i),
			Before: last[id], After: store.AuditAfter(ev), PrevHash: prev}
		e.Hash = store.AuditHash(e)
		prev, last[id] = e.Hash, e.After
		out = append(out, e)
	}
	return out
}

func TestAuditVerifier(t *testing.T) {
	tests := []struct {
		name  string
		edit  func([]store.AuditEntry) []store.AuditEntry
		seq   int64
		check store.AuditCheck
	}{
		{"intact", func(es []store.AuditEntry) []store.AuditEntry { return es }, 0, ""},
		{"actor changed", func(es []store.AuditEntry) []store.AuditEntry { es[2].Actor = "mallory"; return es }, 3, store.AuditHashMismatch},
		{"time changed", func(es []store.AuditEntry) []store.AuditEntry {
			es[4].Time = es[4].Time.Add(time.Nanosecond)
			return es
		}, 5, store.AuditHashMismatch},
		{"middle deleted", func(es []store.AuditEntry) []store.AuditEntry { return append(es[:2], es[3:]...) }, 4, store.AuditSeqGap},
		{"first deleted", func(es []store.AuditEntry) []store.AuditEntry { return es[1:] }, 2, store.AuditSeqGap},
		{"two swapped, renumbered", func(es []store.AuditEntry) []store.AuditEntry {
			es[1], es[2] = es[2], es[1]
			es[1].Seq, es[2].Seq = 2, 3
			return es
		}, 2, store.AuditPrevHashMismatch},
		{"entry rehashed after an edit", func(es []store.AuditEntry) []store.AuditEntry {
			es[3].Actor = "mallory"
			es[3].Hash = store.AuditHash(es[3])
			return es
		}, 5, store.AuditPrevHashMismatch},
		{"before rewritten and rehashed, chain rebuilt", func(es []store.AuditEntry) []store.AuditEntry {
			es[2].Before = ""
			for i := 2; i < len(es); i++ {
				es[i].PrevHash = es[i-1].Hash
				es[i].Hash = store.AuditHash(es[i])
			}
			return es
		}, 3, store.AuditBeforeMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := store.NewAuditVerifier()
			for _, e := range tc.edit(chain(6)) {
				v.Add(e)
			}
			res := v.Result()
			if tc.check == "" {
				if !res.OK() || res.Entries != 6 || res.HeadSeq != 6 {
					t.Fatalf("intact chain: %+v", res)
				}
				return
			}
			if res.OK() || res.Broken.Seq != tc.seq || res.Broken.Check != tc.check {
				t.Fatalf("got %+v (broken %+v), want entry %d to fail %s", res, res.Broken, tc.seq, tc.check)
			}
			if !strings.Contains(res.Broken.Error(), string(tc.check)) {
				t.Errorf("error %q does not name the check", res.Broken.Error())
			}
		})
	}
}

// TestAuditVerifierChecksEvents: an entry is held to the event it records.
func TestAuditVerifierChecksEvents(t *testing.T) {
	es := chain(2)
	ev := store.Event{Type: "run.state.changed", Subject: "b", Data: json.RawMessage(`{"i":1}`)}
	for _, tc := range []struct {
		name  string
		ev    store.Event
		found bool
		ok    bool
	}{
		{"as recorded", ev, true, true},
		{"data edited", store.Event{Type: ev.Type, Subject: ev.Subject, Data: json.RawMessage(`{"i":9}`)}, true, false},
		{"deleted", store.Event{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := store.NewAuditVerifier()
			v.Add(es[0])
			v.Add(es[1])
			if got := v.CheckEvent(es[1], tc.ev, tc.found); got != tc.ok {
				t.Fatalf("CheckEvent = %v, want %v (%+v)", got, tc.ok, v.Result().Broken)
			}
			if b := v.Result().Broken; !tc.ok && (b == nil || b.Seq != 2 || b.Check != store.AuditEventMismatch) {
				t.Fatalf("broken = %+v, want entry 2 event_mismatch", b)
			}
		})
	}
}
