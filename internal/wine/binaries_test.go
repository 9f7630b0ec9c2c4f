//go:build linux

package wine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// binaryTimeout bounds one Windows test binary's run; Wine's start-up and the Linux peers' (started
// through the spawner) make it slower than the same tests on Linux.
const binaryTimeout = 15 * time.Minute

// TestWindowsTestBinariesPassUnderWine runs every Windows test binary `make windows` built
// (bin/windows/test/PKG.test.exe, one per package in WINDOWS_TEST_PKGS) under Wine, in its package
// directory, with a spawner for its Linux peers: any failed test or a non-zero exit fails, and every
// skip is logged with its reason.
func TestWindowsTestBinariesPassUnderWine(t *testing.T) {
	b := newBench(t)
	root := filepath.Join(b.dir, "test")
	var pkgs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".test.exe") {
			rel, _ := filepath.Rel(root, path)
			pkgs = append(pkgs, filepath.ToSlash(strings.TrimSuffix(rel, ".test.exe")))
		}
		return err
	})
	if err != nil || len(pkgs) == 0 {
		missing(t, "no Windows test binaries in %s (run `make windows`): %v", root, err)
	}
	// The spawner translates the Windows paths of its requests in this prefix (testbed.StartSpawner).
	t.Setenv("WINEPREFIX", b.prefix)
	for _, pkg := range pkgs {
		t.Run(pkg, func(t *testing.T) {
			res := runTestBinary(t, b, pkg)
			t.Logf("%s under Wine: %d passed, %d failed, %d skipped in %v", pkg, len(res.passed), len(res.failed), len(res.skipped), res.took.Round(time.Second))
			for _, s := range res.skipped {
				t.Logf("SKIP %s: %s", s, res.reason(s))
			}
			for _, f := range res.failed {
				t.Errorf("FAIL %s:\n%s", f, res.output[f])
			}
			switch {
			case res.exitErr != nil && len(res.failed) == 0:
				t.Errorf("the test binary exited with %v and no failed test; its output:\n%s\nstderr:\n%s", res.exitErr, res.stdout, res.stderr)
			case res.exitErr == nil && len(res.failed) > 0:
				t.Errorf("the test binary exited 0 with failed tests")
			case len(res.passed) == 0 && len(res.failed) == 0:
				t.Errorf("no test ran; output:\n%s\nstderr:\n%s", res.stdout, res.stderr)
			}
		})
	}
}

// binaryResult is what one test binary reported, test by test (subtests by their full name).
type binaryResult struct {
	passed, failed, skipped []string
	output                  map[string]string // each test's own output lines
	stdout, stderr          string
	exitErr                 error
	took                    time.Duration
}

// reason is the output a skipped test printed: its t.Skip message.
func (r binaryResult) reason(test string) string {
	return strings.TrimSpace(r.output[test])
}

// runTestBinary runs the Windows test binary of pkg (e.g. "app/control") under Wine with -test.v in
// test2json framing, and reads its report through `go tool test2json`, the converter `go test
// -json` uses, rather than by matching `--- PASS` lines that a test's own output could imitate.
func runTestBinary(t *testing.T, b bench, pkg string) binaryResult {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	pkgDir := filepath.Join(filepath.Dir(file), "..", "..", filepath.FromSlash(pkg))
	ctx, cancel := context.WithTimeout(t.Context(), binaryTimeout)
	defer cancel()
	cmd := b.wineCommand(filepath.Join(b.dir, "test", pkg+".test.exe"),
		"-test.v=test2json", "-test.count=1", "-test.timeout="+(binaryTimeout-time.Minute).String())
	cmd.Env = append(cmd.Env, "AUTHKEEPER_SPAWNER="+testbed.StartSpawner(t))
	cmd.Dir = pkgDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	res := binaryResult{output: map[string]string{}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start wine: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case res.exitErr = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not finish within %v; output so far:\n%s\nstderr:\n%s", pkg, binaryTimeout, stdout.String(), stderr.String())
	}
	res.took = time.Since(start)
	res.stdout, res.stderr = stdout.String(), stderr.String()

	conv := exec.Command("go", "tool", "test2json", "-p", pkg)
	conv.Stdin = bytes.NewReader(stdout.Bytes())
	events, err := conv.Output()
	if err != nil {
		t.Fatalf("go tool test2json: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(events))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var ev struct{ Action, Test, Output string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("test2json event %q: %v", sc.Text(), err)
		}
		if ev.Test == "" {
			continue // the package's own lines: PASS, FAIL, ok
		}
		switch ev.Action {
		case "pass":
			res.passed = append(res.passed, ev.Test)
		case "fail":
			res.failed = append(res.failed, ev.Test)
		case "skip":
			res.skipped = append(res.skipped, ev.Test)
		case "output":
			if !isFraming(ev.Output) {
				res.output[ev.Test] += ev.Output
			}
		}
	}
	// A parent whose subtest failed fails too; report the innermost only.
	res.failed = slices.DeleteFunc(res.failed, func(f string) bool {
		return slices.ContainsFunc(res.failed, func(g string) bool { return strings.HasPrefix(g, f+"/") })
	})
	return res
}

// isFraming reports whether a line of a test's output is go test's own (=== RUN, --- PASS, ...).
func isFraming(line string) bool {
	l := strings.TrimSpace(line)
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- FAIL", "--- SKIP"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}
