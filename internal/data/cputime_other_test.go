//go:build !linux

package data

import "time"

// cpuTime is not measured here: benchmarks report 0 CPU seconds.
func cpuTime() time.Duration { return 0 }
