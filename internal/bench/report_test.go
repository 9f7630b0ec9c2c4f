//go:build linux

package bench

import (
	"os"
	"runtime"
	"strings"
)

// The parts every report shares.

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// machine renders the "Machine" section every report shares.
func machine(w func(format string, args ...any)) {
	w("## Machine\n\n")
	w("- CPUs (`nproc`): %d\n- CPU: %s\n- Go: %s %s/%s\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	w("- Load average (1, 5, 15 min) when the report was written: %s\n\n", loadAvg())
}
