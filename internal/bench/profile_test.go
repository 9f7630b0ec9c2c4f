//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// cpuProfiles records this process's CPU profile one window at a time, one file per window, so that
// the windows of one path can be read together and those of another left out. Not safe for
// concurrent use.
type cpuProfiles struct {
	dir   string
	files map[string][]string // key → the profiles of its windows
	// err is why profiling failed (e.g. `go test -cpuprofile` holds the profiler); from then on
	// during runs its function unprofiled.
	err error
}

func newCPUProfiles(dir string) *cpuProfiles {
	return &cpuProfiles{dir: dir, files: map[string][]string{}}
}

// during runs f under the CPU profiler, adding the window's profile to key's.
func (p *cpuProfiles) during(key string, f func() error) error {
	if p.err != nil {
		return f()
	}
	name := filepath.Join(p.dir, fmt.Sprintf("%s-%d.pprof", strings.NewReplacer("/", "-", " ", "-").Replace(key), len(p.files[key])))
	out, err := os.Create(name)
	if err != nil {
		p.err = err
		return f()
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		p.err = fmt.Errorf("start the CPU profile: %w", err)
		out.Close()
		return f()
	}
	ferr := f()
	pprof.StopCPUProfile()
	if err := out.Close(); err != nil {
		p.err = err
		return ferr
	}
	p.files[key] = append(p.files[key], name)
	return ferr
}

// pprofTool runs `go tool pprof args...` and returns its output without the lines that name the
// binary, its build ID and the time, which say nothing about where the time went.
func pprofTool(args ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command to run pprof: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, goBin, append([]string{"tool", "pprof"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var keep []string
	for line := range strings.SplitSeq(strings.TrimRight(string(out), "\n"), "\n") {
		if !strings.HasPrefix(line, "File: ") && !strings.HasPrefix(line, "Build ID: ") && !strings.HasPrefix(line, "Time: ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n"), nil
}

// showing is pprof's summary of what a report covers.
var showing = regexp.MustCompile(`Showing nodes accounting for [^,]+, ([0-9.]+)% of \S+ total`)

// focusShare returns the share of all samples of the profiles that carry the label focus (pprof's
// -tagfocus, "key=value"), from 0 to 1.
func focusShare(focus string, profiles []string) (float64, error) {
	// With -nodecount, "Showing nodes" would count only the nodes shown: read a report without one.
	// With -nodefraction=0 no node is dropped, so the nodes' own time adds up to the focused samples.
	out, err := pprofTool(append([]string{"-top", "-nodefraction=0", "-tagfocus=" + focus}, profiles...)...)
	if err != nil {
		return 0, err
	}
	m := showing.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no summary line in pprof's output:\n%s", out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v / 100, err
}

// profileSummary is what a report shows of a CPU profile.
type profileSummary struct {
	what    string
	share   float64 // of all samples, in the focused code; -1 when not computed
	excerpt string  // pprof -top
	err     error   // why there is no profile to show
}
