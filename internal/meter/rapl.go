package meter

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Zone is one top-level RAPL power zone (a CPU package): its counter in
// microjoules and the value at which the counter wraps to 0.
type Zone struct {
	Path     string // e.g. /sys/class/powercap/intel-rapl:0
	Name     string // e.g. package-0
	EnergyUJ uint64
	MaxUJ    uint64 // max_energy_range_uj (0: unknown, no wrap handling)
}

// ReadRAPL reads every top-level RAPL zone under sysRoot/class/powercap:
// intel-rapl:N (the kernel's powercap driver, which also serves AMD
// processors) and amd-rapl:N. Sub-zones (intel-rapl:N:M: core, uncore,
// dram) are parts of their package and are left out so nothing is counted
// twice. It fails when there is no zone or a zone's counter cannot be read
// (since Linux 5.10 energy_uj is readable by root only).
func ReadRAPL(sysRoot string) ([]Zone, error) {
	base := filepath.Join(sysRoot, "class", "powercap")
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, errs.NotFound("rapl: %v", err)
	}
	var zones []Zone
	for _, e := range entries {
		name := e.Name()
		prefix, idx, ok := strings.Cut(name, ":")
		if !ok || (prefix != "intel-rapl" && prefix != "amd-rapl") || strings.Contains(idx, ":") {
			continue
		}
		if _, err := strconv.Atoi(idx); err != nil {
			continue
		}
		dir := filepath.Join(base, name)
		uj, err := readUint(filepath.Join(dir, "energy_uj"))
		if err != nil {
			return nil, err
		}
		z := Zone{Path: dir, Name: name, EnergyUJ: uj}
		if b, err := os.ReadFile(filepath.Join(dir, "name")); err == nil { // #nosec G304 -- sysfs path
			z.Name = strings.TrimSpace(string(b))
		}
		if m, err := readUint(filepath.Join(dir, "max_energy_range_uj")); err == nil {
			z.MaxUJ = m
		}
		zones = append(zones, z)
	}
	if len(zones) == 0 {
		return nil, errs.NotFound("rapl: no intel-rapl:N or amd-rapl:N zone under %s", base)
	}
	sort.Slice(zones, func(i, j int) bool { return zones[i].Path < zones[j].Path })
	return zones, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- sysfs path built from a directory listing
	if err != nil {
		return 0, errs.Unavailable("rapl: %v", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, errs.Invalid("rapl: %s: %q is not a counter", path, strings.TrimSpace(string(b)))
	}
	return v, nil
}

// EnergyDelta returns the joules used between two readings of the same
// zones, adding one wrap of a counter that went down. Zones present in one
// reading only are skipped.
func EnergyDelta(before, after []Zone) float64 {
	prev := map[string]Zone{}
	for _, z := range before {
		prev[z.Path] = z
	}
	var uj float64
	for _, z := range after {
		p, ok := prev[z.Path]
		if !ok {
			continue
		}
		switch {
		case z.EnergyUJ >= p.EnergyUJ:
			uj += float64(z.EnergyUJ - p.EnergyUJ)
		case z.MaxUJ > p.EnergyUJ:
			uj += float64(z.MaxUJ - p.EnergyUJ + z.EnergyUJ)
		}
	}
	return uj / 1e6
}
