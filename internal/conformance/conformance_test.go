package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scenarioLine is the suite's result line for one scenario in --suite mode, e.g.
// "✗ auth/basic-cimd: 12 passed, 0 failed, 1 warnings". The suite counts a scenario as passed only
// with no failed check and no warning.
var scenarioLine = regexp.MustCompile(`^([✓✗]) (\S+): (\d+) passed, (\d+) failed(?:, (\d+) warnings)?$`)

// TestConformanceClientScenarios runs every client scenario of the pinned conformance suite against
// the real binary through the adapter, logs the suite's score line, and fails the subtest of each
// scenario the suite does not pass, with the checks it failed.
func TestConformanceClientScenarios(t *testing.T) {
	node, suite := suiteRuntime(t)
	bin := binary(t)
	adapter := buildAdapter(t)
	out := t.TempDir()
	if strings.ContainsAny(adapter, " \t") {
		t.Fatalf("adapter path %q has a space: the suite splits --command on spaces", adapter)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// --suite all starts every scenario at once; the adapters take turns on AKCONF_LOCK (see the
	// adapter's doc), so the suite's per-client timeout must cover the whole queue: 26 clients of a few
	// seconds each, or of at most the adapter's own 45 s deadline when one hangs.
	cmd := exec.CommandContext(ctx, node, suite, "client", "--command", adapter, "--suite", "all",
		"--timeout", "420000", "-o", out)
	cmd.Env = append(os.Environ(), "AUTHKEEPER_BIN="+bin, "AKCONF_LOCK="+filepath.Join(t.TempDir(), "turn.lock"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	// The suite exits 1 when any scenario fails; its summary says which.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("conformance suite: %v\nstdout:\n%s\nstderr (tail):\n%s", err, stdout, tail(stderr.String(), 60))
	}

	var total string
	var results [][]string
	sc := bufio.NewScanner(strings.NewReader(string(stdout)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := scenarioLine.FindStringSubmatch(line); m != nil {
			results = append(results, m)
		} else if strings.HasPrefix(line, "Total: ") {
			total = line
		}
	}
	if total == "" || len(results) == 0 {
		t.Fatalf("no summary in the suite's output:\n%s\nstderr (tail):\n%s", stdout, tail(stderr.String(), 60))
	}
	passed, authPassed, auth := 0, 0, 0
	for _, m := range results {
		ok := m[1] == "✓"
		if ok {
			passed++
		}
		if strings.HasPrefix(m[2], "auth/") {
			auth++
			if ok {
				authPassed++
			}
		}
	}
	t.Logf("conformance suite: %s", total)
	t.Logf("scenarios passed: %d of %d (auth: %d of %d)", passed, len(results), authPassed, auth)
	if want := scenarioCount(string(stdout)); want != len(results) {
		t.Errorf("the suite announced %d scenarios but reported %d", want, len(results))
	}
	for _, m := range results {
		t.Run(m[2], func(t *testing.T) {
			t.Log(m[0])
			if m[1] == "✓" {
				return
			}
			checks, clientErr := scenarioResults(t, out, m[2])
			t.Errorf("the suite fails %s:\n%s\nthe adapter's stderr (tail):\n%s", m[2], checks, tail(clientErr, 40))
		})
	}
}

// scenarioCount reads "Running all suite (26 scenarios) in parallel...".
func scenarioCount(stdout string) int {
	m := regexp.MustCompile(`Running \S+ suite \((\d+) scenarios\)`).FindStringSubmatch(stdout)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// check is one entry of the suite's checks.json.
type check struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Description  string `json:"description"`
	ErrorMessage string `json:"errorMessage"`
}

// scenarioResults returns the failed and warning checks of scenario (one per line) and the client's
// stderr, from the results directory the suite wrote for it (<out>/<scenario>-<timestamp>/).
func scenarioResults(t *testing.T, out, scenario string) (string, string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(out, scenario+"-*"))
	if len(dirs) != 1 {
		return fmt.Sprintf("(no single results directory for %s: %v)", scenario, dirs), ""
	}
	data, err := os.ReadFile(filepath.Join(dirs[0], "checks.json"))
	if err != nil {
		return err.Error(), ""
	}
	var checks []check
	if err := json.Unmarshal(data, &checks); err != nil {
		return err.Error(), ""
	}
	var b strings.Builder
	for _, c := range checks {
		if c.Status == "FAILURE" || c.Status == "WARNING" {
			fmt.Fprintf(&b, "  [%s] %s: %s", c.ID, c.Status, c.Description)
			if c.ErrorMessage != "" {
				fmt.Fprintf(&b, " (%s)", c.ErrorMessage)
			}
			b.WriteString("\n")
		}
	}
	clientErr, _ := os.ReadFile(filepath.Join(dirs[0], "stderr.txt"))
	return b.String(), string(clientErr)
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
