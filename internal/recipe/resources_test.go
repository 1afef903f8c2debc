package recipe

import (
	"testing"
)

func TestQuantities(t *testing.T) {
	tests := []struct {
		in        string
		cpu       int64 // -1: not a CPU quantity
		mem       int64 // -1: not a memory quantity
		cpuString string
	}{
		{"2", 2000, 2, "2"},
		{"0.5", 500, -1, "500m"},
		{"1.25", 1250, -1, "1250m"},
		{"500m", 500, -1, "500m"},
		{"4Gi", -1, 4 << 30, ""},
		{"1536Mi", -1, 1536 << 20, ""},
		{"2G", -1, 2e9, ""},
		{"1.2345", -1, -1, ""},
		{"-1", -1, -1, ""},
		{"", -1, -1, ""},
		{"1e3", -1, -1, ""},
		{"9999999999999999Pi", -1, -1, ""}, // overflows int64
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			cpu, ok := ParseCPU(tc.in)
			if (tc.cpu >= 0) != ok || (ok && cpu != tc.cpu) {
				t.Errorf("ParseCPU = %d, %v; want %d", cpu, ok, tc.cpu)
			}
			if ok && CPUString(cpu) != tc.cpuString {
				t.Errorf("CPUString(%d) = %q, want %q", cpu, CPUString(cpu), tc.cpuString)
			}
			mem, ok := ParseMemory(tc.in)
			if (tc.mem >= 0) != ok || (ok && mem != tc.mem) {
				t.Errorf("ParseMemory = %d, %v; want %d", mem, ok, tc.mem)
			}
		})
	}
	if s := MemoryString(1536 << 20); s != "1536Mi" {
		t.Errorf("MemoryString = %q", s)
	}
	if s := MemoryString(2e9 + 1); s != "2000000001" {
		t.Errorf("MemoryString = %q", s)
	}
	if s := MemoryString(10000001e9); s != "10000001G" { // 17 digits plain: more than ParseMemory reads
		t.Errorf("MemoryString = %q", s)
	}
}

// FuzzQuantities checks that what ParseCPU and ParseMemory accept is
// written back canonically to a form that parses to the same value.
func FuzzQuantities(f *testing.F) {
	for _, s := range []string{"2", "0.5", "500m", "4Gi", "2G", "1536Mi", "7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := ParseCPU(s); ok {
			if v < 0 {
				t.Fatalf("ParseCPU(%q) = %d", s, v)
			}
			back, ok := ParseCPU(CPUString(v))
			if !ok || back != v {
				t.Fatalf("CPU %q → %d → %q → %d, %v", s, v, CPUString(v), back, ok)
			}
		}
		if v, ok := ParseMemory(s); ok {
			if v < 0 {
				t.Fatalf("ParseMemory(%q) = %d", s, v)
			}
			back, ok := ParseMemory(MemoryString(v))
			if !ok || back != v {
				t.Fatalf("memory %q → %d → %q → %d, %v", s, v, MemoryString(v), back, ok)
			}
		}
	})
}
