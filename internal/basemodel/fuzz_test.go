package basemodel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// FuzzScanReader checks that the streaming validator passes a file through
// unchanged exactly when ReadHeader accepts it, and hashes every tensor.
func FuzzScanReader(f *testing.F) {
	f.Add(rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"e":{"dtype":"F16","shape":[0],"data_offsets":[2,2]}}`, 16))
	f.Add(rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Add(rawSafetensors(`{"__metadata__":{"format":"pt"}}`, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newScanReader("x.safetensors", bytes.NewReader(data), int64(len(data)))
		out, err := io.ReadAll(s)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error kind %s: %v", errs.Kind(err), err)
			}
			return
		}
		if !bytes.Equal(out, data) {
			t.Fatal("bytes changed in transit")
		}
		recs, err := s.records()
		if err != nil {
			t.Fatal(err)
		}
		h, err := safetensors.ReadHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("scan accepted what ReadHeader refuses: %v", err)
		}
		for _, r := range recs {
			want := sha256.Sum256(data[h.DataStart+r.Info.Begin : h.DataStart+r.Info.End])
			if r.Digest != want {
				t.Fatalf("tensor %q digest differs", r.Info.Name)
			}
		}
	})
}

// FuzzImportTar feeds arbitrary tar streams to Import.
func FuzzImportTar(f *testing.F) {
	f.Add(tarOf(&testing.T{}, map[string][]byte{"config.json": []byte(`{"architectures":["GPT2LMHeadModel"]}`), "tokenizer.json": []byte(`{"model":{}}`)}))
	f.Add(tarOf(&testing.T{}, map[string][]byte{"../x": []byte("{}")}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Import(context.Background(), NewTarSource(bytes.NewReader(data)), ImportOptions{Name: "f", MaxTotalBytes: 1 << 20}, newMemSink())
		if err == nil {
			if len(m.Fingerprint) != 64 || m.Params <= 0 {
				t.Fatalf("bad manifest %+v", m)
			}
			return
		}
		if k := errs.Kind(err); k != "invalid" && k != "internal" {
			t.Fatalf("error kind %s: %v", k, err)
		}
	})
}
