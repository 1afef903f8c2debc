package meter

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     ProcCPU
		bad      bool
	}{
		{name: "plain", in: "1 (init) S 0 1 1 0 -1 0 0 0 0 0 7 3 2 1 20 0 1 0 1 1 1", want: ProcCPU{7, 3, 2, 1}},
		{name: "name with spaces and parens", in: "42 (a b) c)) R 1 42 42 0 -1 0 0 0 0 0 250 50 10 5 20", want: ProcCPU{250, 50, 10, 5}},
		{name: "no paren", in: "1 init S", bad: true},
		{name: "short", in: "1 (x) S 0 1", bad: true},
		{name: "negative tick", in: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 -7 3 2 1 20", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcStat([]byte(tt.in))
			if tt.bad {
				if !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("err = %v, want invalid", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseProcStat = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
		kind     error
	}{
		{name: "present", in: "Name:\tx\nVmHWM:\t  2048 kB\n", want: 2 << 20},
		{name: "absent", in: "Name:\tx\n", kind: errs.ErrNotFound},
		{name: "no unit", in: "VmHWM: 12\n", kind: errs.ErrInvalid},
		{name: "not a number", in: "Name: x\nVmHWM: x kB\n", kind: errs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVmHWM([]byte(tt.in))
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("err = %v, want %v", err, tt.kind)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVmHWM = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "proc", "busy", "stat"))
	if err != nil {
		t.Fatal(err)
	}
	busy, total, err := ParseStatCPU(b)
	if err != nil || busy != 1500 || total != 10000 {
		t.Fatalf("ParseStatCPU = %d, %d, %v; want 1500 busy of 10000", busy, total, err)
	}
	for _, in := range []string{"intr 1\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5 6 7 8\n"} {
		if _, _, err := ParseStatCPU([]byte(in)); err == nil {
			t.Errorf("ParseStatCPU(%q) accepted", in)
		}
	}
}

// TestReadProcSelf reads this test process's own counters: the real /proc
// this package reads in production.
func TestReadProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs here")
	}
	_, rss, err := ReadProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 {
		t.Errorf("peak RSS of a running Go test = %d", rss)
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("42 (a b) c)) R 1 42 42 0 -1 0 0 0 0 0 250 50 10 5 20"))
	f.Add([]byte("1 (x) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProcStat(b)
		if err == nil && p.Seconds() < 0 {
			t.Fatalf("negative CPU time %+v", p)
		}
	})
}

func FuzzParseVmHWM(f *testing.F) {
	f.Add([]byte("VmHWM:\t 2048 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := ParseVmHWM(b); err == nil && n < 0 {
			t.Fatalf("negative peak %d", n)
		}
	})
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("cpu  1000 0 500 8000 500 0 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if busy, total, err := ParseStatCPU(b); err == nil && busy > total {
			t.Fatalf("busy %d > total %d", busy, total)
		}
	})
}
