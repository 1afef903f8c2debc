package recipe

import (
	"math"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Resources is what one training worker of the recipe asks of the machine
// it runs on: a Kubernetes Job's requests and limits (internal/run/kube).
// The local executor ignores it. Zero fields ask for nothing; the block
// is optional, and a recipe without it normalizes (and hashes) as before.
type Resources struct {
	// MilliCPU is the CPU in thousandths of a core: "2" is 2000, "500m"
	// and "0.5" are 500.
	MilliCPU int64
	// MemoryBytes is the memory: "4Gi" is 4<<30, "512M" is 512e6.
	MemoryBytes int64
}

// Bounds of a worker's resources.
const (
	maxMilliCPU    = 1024 * 1000 // 1024 cores
	maxMemoryBytes = 1 << 50     // 1 PiB
)

var (
	milliCPURE = regexp.MustCompile(`^([0-9]{1,10})m$`) // 10 digits: 9999999.999 cores is 9999999999m
	coresRE    = regexp.MustCompile(`^([0-9]{1,7})(?:\.([0-9]{1,3}))?$`)
	memoryRE   = regexp.MustCompile(`^([0-9]{1,16})(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$`)
)

var memorySuffix = map[string]int64{"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50}

// ParseCPU reads a CPU quantity as Kubernetes writes one: whole or
// decimal cores ("2", "0.5", at most three decimals) or millicores
// ("500m"). It returns millicores.
func ParseCPU(s string) (int64, bool) {
	if m := milliCPURE.FindStringSubmatch(s); m != nil {
		v, err := strconv.ParseInt(m[1], 10, 64)
		return v, err == nil
	}
	m := coresRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	whole, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	frac := m[2]
	for len(frac) < 3 {
		frac += "0"
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	return whole*1000 + f, err == nil
}

// ParseMemory reads a memory quantity as Kubernetes writes one: bytes,
// optionally with a decimal (k, M, G, T, P) or binary (Ki, Mi, Gi, Ti,
// Pi) suffix. It returns bytes.
func ParseMemory(s string) (int64, bool) {
	m := memoryRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	mult := memorySuffix[m[2]]
	if err != nil || v > math.MaxInt64/mult {
		return 0, false
	}
	return v * mult, true
}

// CPUString writes millicores the canonical way: whole cores as "2",
// others as "1500m".
func CPUString(milli int64) string {
	if milli%1000 == 0 {
		return strconv.FormatInt(milli/1000, 10)
	}
	return strconv.FormatInt(milli, 10) + "m"
}

// MemoryString writes bytes the canonical way: with the largest binary
// suffix that divides them ("4Gi", "1536Mi"), else plain bytes, unless
// those are more digits than ParseMemory reads (16): then with the largest
// decimal suffix that divides them ("10000001G"). Whatever ParseMemory
// accepted is a number of at most 16 digits times a suffix, so one of the
// forms fits.
func MemoryString(b int64) string {
	for _, s := range []string{"Pi", "Ti", "Gi", "Mi", "Ki"} {
		if m := memorySuffix[s]; b >= m && b%m == 0 {
			return strconv.FormatInt(b/m, 10) + s
		}
	}
	plain := strconv.FormatInt(b, 10)
	if len(plain) > 16 {
		for _, s := range []string{"P", "T", "G", "M", "k"} {
			if m := memorySuffix[s]; b%m == 0 {
				return strconv.FormatInt(b/m, 10) + s
			}
		}
	}
	return plain
}

func (d *decoder) resources(n *yaml.Node, path string, res *Resources) error {
	return d.mapping(n, path, []field{
		{"cpu", func(n *yaml.Node, path string) error {
			s, err := d.str(n, path)
			if err != nil {
				return err
			}
			v, ok := ParseCPU(s)
			if !ok {
				return d.errNode(n, path, "invalid CPU %q: write cores (\"2\", \"0.5\") or millicores (\"500m\")", s)
			}
			res.MilliCPU = v
			return nil
		}},
		{"memory", func(n *yaml.Node, path string) error {
			s, err := d.str(n, path)
			if err != nil {
				return err
			}
			v, ok := ParseMemory(s)
			if !ok {
				return d.errNode(n, path, "invalid memory %q: write bytes with an optional suffix (\"4Gi\", \"512Mi\", \"2G\")", s)
			}
			res.MemoryBytes = v
			return nil
		}},
	})
}

func (r *Recipe) checkResources() error {
	x := r.Resources
	if x == nil {
		return nil
	}
	switch {
	case x.MilliCPU == 0 && x.MemoryBytes == 0:
		return r.errf("resources", "empty: give cpu, memory or both, or leave the block out")
	case x.MilliCPU < 0 || x.MilliCPU > maxMilliCPU:
		return r.errf("resources.cpu", "must be between 1m and %s, got %s", CPUString(maxMilliCPU), CPUString(x.MilliCPU))
	case x.MemoryBytes < 0 || x.MemoryBytes > maxMemoryBytes:
		return r.errf("resources.memory", "must be between 1 byte and %s, got %d bytes", MemoryString(maxMemoryBytes), x.MemoryBytes)
	case x.MemoryBytes > 0 && x.MemoryBytes < 1<<20:
		return r.errf("resources.memory", "%d bytes is less than 1Mi, too little for a worker to start (write a suffix: \"512Mi\", \"4Gi\")", x.MemoryBytes)
	}
	return nil
}

func (w *writer) writeResources(x *Resources) {
	w.key(0, "resources")
	if x.MilliCPU > 0 {
		w.str(1, "cpu", CPUString(x.MilliCPU))
	}
	if x.MemoryBytes > 0 {
		w.str(1, "memory", MemoryString(x.MemoryBytes))
	}
}
