package childengine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

func mustFrame(t testing.TB, f frame) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeFrame(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCallRoundTrip(t *testing.T) {
	a := &serve.Loaded{Target: serve.Target{Model: "a", BaseID: "b1", Adapter: "sha256:x"}}
	b := &serve.Loaded{Target: serve.Target{Model: "b", BaseID: "b2"}}
	toks := [][]int32{{1, 2, 3}, {}, {-7, 1 << 30}}
	m, data, err := encodeCall([]*serve.Loaded{a, b, a}, []uint64{5, 6, 7}, toks)
	if err != nil {
		t.Fatal(err)
	}
	f, err := jsonFrame(frameLogits, 42, m, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readFrame(bytes.NewReader(mustFrame(t, f)))
	if err != nil {
		t.Fatal(err)
	}
	if got.typ != frameLogits || got.id != 42 {
		t.Fatalf("frame %q id %d", got.typ, got.id)
	}
	gm, gt, err := decodeCall(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(gm.Models) != 2 || gm.Rows[2].Model != 0 || gm.Rows[1].Seq != 6 || gm.Models[1].BaseID != "b2" {
		t.Fatalf("meta %+v", gm)
	}
	for i := range toks {
		if !slices.Equal(gt[i], toks[i]) {
			t.Fatalf("row %d: %v, sent %v", i, gt[i], toks[i])
		}
	}
	rows := [][]float32{{0.25, -1e30, 3}, {}, {float32(1) / 3}}
	rf, err := encodeRows(9, rows)
	if err != nil {
		t.Fatal(err)
	}
	back, err := readFrame(bytes.NewReader(mustFrame(t, rf)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeRows(back, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if !slices.Equal(out[i], rows[i]) {
			t.Fatalf("row %d: %v, sent %v", i, out[i], rows[i])
		}
	}
	if _, err := decodeRows(back, 2); !errors.Is(err, errProtocol) {
		t.Fatalf("3 rows read as 2: %v", err)
	}
	e := decodeError(errorFrame(1, errs.NotFound("adapter %s", "x")))
	if errs.Kind(e) != "not_found" || !strings.Contains(e.Error(), "adapter x") {
		t.Fatalf("error across the boundary: %v (%s)", e, errs.Kind(e))
	}
}

func header(typ byte, id uint64, meta, data uint32) []byte {
	h := make([]byte, headerBytes)
	h[0], h[1] = frameMagic, typ
	binary.BigEndian.PutUint64(h[2:], id)
	binary.BigEndian.PutUint32(h[10:], meta)
	binary.BigEndian.PutUint32(h[14:], data)
	return h
}

func TestReadFrameErrors(t *testing.T) {
	good := mustFrame(t, frame{typ: frameStats, id: 1, meta: []byte(`{}`)})
	cases := []struct {
		name string
		in   []byte
		want string // in the error; "" for a clean io.EOF
	}{
		{"empty", nil, ""},
		{"torn header", good[:5], "inside a frame header"},
		{"bad magic", append([]byte{'{'}, good[1:]...), "byte 0x7b where a frame starts"},
		{"meta over the limit", header('S', 1, MaxMetaBytes+1, 0), "meta bytes; the limit is"},
		{"data over the limit", header('R', 1, 2, MaxDataBytes+4), "data bytes; the limit is"},
		{"data not words", header('R', 1, 2, 6), "not whole 4-byte words"},
		{"body cut", append(header('R', 1, 2, 8), "{}1234"...), "unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tc.in))
			if tc.want == "" {
				if err != io.EOF {
					t.Fatalf("err %v, want io.EOF", err)
				}
				return
			}
			if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a protocol error with %q", err, tc.want)
			}
		})
	}
	meta := []struct {
		name string
		f    frame
		want string
	}{
		{"row past the data", frame{typ: frameClassify, meta: []byte(`{"models":[{}],"rows":[{"model":0,"len":3}]}`), data: make([]byte, 8)}, "claims 3 words; 2 are left"},
		{"words left over", frame{typ: frameClassify, meta: []byte(`{"models":[{}],"rows":[{"model":0,"len":1}]}`), data: make([]byte, 8)}, "rows hold 1 words, the frame 2"},
		{"model out of range", frame{typ: frameClassify, meta: []byte(`{"models":[],"rows":[{"model":0,"len":0}]}`)}, "names model 0 of 0"},
		{"negative length", frame{typ: frameLogits, meta: []byte(`{"models":[{}],"rows":[{"model":0,"len":-1}]}`)}, "claims -1 words"},
		{"unknown field", frame{typ: frameLogits, meta: []byte(`{"modelz":[]}`)}, "unknown field"},
		{"not JSON", frame{typ: frameLogits, meta: []byte(`{`)}, "meta"},
	}
	for _, tc := range meta {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeCall(tc.f)
			if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a protocol error with %q", err, tc.want)
			}
		})
	}
}

// TestReadFrameAllocatesWhatArrives: a header that claims the largest
// frame but is followed by a few bytes costs kilobytes, not 64 MiB.
func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	in := append(header('R', 1, MaxMetaBytes, MaxDataBytes), "{}"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := readFrame(bytes.NewReader(in)); err == nil {
			t.Fatal("a cut frame was read")
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 1<<20 {
		t.Fatalf("%d bytes allocated per cut frame", per)
	}
}

// FuzzReadFrame: any input gives frames or a clear error, never a panic,
// and decoding what was read never panics either.
func FuzzReadFrame(f *testing.F) {
	m, data, _ := encodeCall([]*serve.Loaded{{Target: serve.Target{BaseID: "b"}}}, []uint64{1}, [][]int32{{1, 2}})
	call, _ := jsonFrame(frameClassify, 3, m, data)
	rows, _ := encodeRows(4, [][]float32{{1, 2}, {3}})
	seeds := [][]byte{
		mustFrame(f, call),
		mustFrame(f, rows),
		mustFrame(f, errorFrame(5, errs.Invalid("bad"))),
		mustFrame(f, frame{typ: frameHello, meta: []byte(`{"blob":"file:///x"}`)}),
		append(mustFrame(f, frame{typ: frameCancel, id: 9}), mustFrame(f, rows)...),
		header('R', 1, 10, 1<<20),
		{frameMagic},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for range 8 {
			fr, err := readFrame(r)
			if err != nil {
				if err != io.EOF && !errors.Is(err, errProtocol) {
					t.Fatalf("error %v is neither EOF nor a protocol error", err)
				}
				return
			}
			if len(fr.meta) > MaxMetaBytes || len(fr.data) > MaxDataBytes || len(fr.data)%4 != 0 {
				t.Fatalf("frame past the limits: %d meta, %d data bytes", len(fr.meta), len(fr.data))
			}
			if _, toks, err := decodeCall(fr); err == nil {
				n := 0
				for _, row := range toks {
					n += len(row)
				}
				if 4*n != len(fr.data) {
					t.Fatalf("%d tokens from %d data bytes", n, len(fr.data))
				}
			}
			_, _ = decodeRows(fr, 2)
			_ = decodeError(fr)
			var s Spec
			_ = decodeMeta(fr, &s)
		}
	})
}
