package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/internal/e2e"
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

// wantScenarios is the number of client scenarios conformance 0.1.16 (node/package.json) has: auth,
// back-compat, draft and extension ones. A run that reports fewer cannot pass, whatever the suite
// announced.
const wantScenarios = 26

// allowClientError are the scenarios whose client is expected to fail (the suite's allowClientError):
// authkeeper must refuse the server (resource-mismatch) or stop asking for ever more scope
// (scope-retry-limit). Every other scenario's adapter must print completedLine.
var allowClientError = map[string]bool{"auth/resource-mismatch": true, "auth/scope-retry-limit": true}

// completedLine is what the adapter prints last when it used the server to the end (adapter/main.go).
const completedLine = "adapter: completed: added the server, listed its tools and called each one"

// suiteRun is what the suite printed in --suite mode.
type suiteRun struct {
	announced int          // from "Running all suite (26 scenarios) in parallel...", -1 if absent
	total     string       // the "Total: …" line, "" if absent
	results   []suiteEntry // one per scenario line, in order
}

type suiteEntry struct {
	name, line string
	passed     bool
}

// parseSuite reads the suite's stdout.
func parseSuite(stdout string) suiteRun {
	r := suiteRun{announced: -1}
	if m := regexp.MustCompile(`Running \S+ suite \((\d+) scenarios\)`).FindStringSubmatch(stdout); m != nil {
		r.announced, _ = strconv.Atoi(m[1])
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := scenarioLine.FindStringSubmatch(line); m != nil {
			r.results = append(r.results, suiteEntry{name: m[2], line: line, passed: m[1] == "✓"})
		} else if strings.HasPrefix(line, "Total: ") {
			r.total = line
		}
	}
	return r
}

// problems says why the run as a whole cannot count as a pass, apart from the scenarios it reports
// failing: a missing summary, fewer scenarios than the pinned suite has or than it announced, a
// scenario reported twice, or a total that disagrees with the scenario lines.
func (r suiteRun) problems() []string {
	var p []string
	if r.total == "" {
		p = append(p, "no \"Total:\" line in the suite's output")
	}
	if len(r.results) < wantScenarios {
		p = append(p, fmt.Sprintf("%d scenarios reported, want all %d client scenarios of the pinned suite", len(r.results), wantScenarios))
	}
	if r.announced != len(r.results) {
		p = append(p, fmt.Sprintf("the suite announced %d scenarios but reported %d", r.announced, len(r.results)))
	}
	seen := map[string]bool{}
	allPassed := true
	for _, e := range r.results {
		if seen[e.name] {
			p = append(p, e.name+" is reported twice")
		}
		seen[e.name] = true
		allPassed = allPassed && e.passed
	}
	if allPassed && r.total != "" && !regexp.MustCompile(`^Total: \d+ passed, 0 failed, 0 warnings$`).MatchString(r.total) {
		p = append(p, "every scenario line passed but the total says otherwise: "+r.total)
	}
	return p
}

// TestConformanceClientScenarios runs every client scenario of the pinned conformance suite against
// the real binary through the adapter, logs the suite's score line, and fails the subtest of each
// scenario the suite does not pass, with the checks it failed — and of each scenario whose client did
// not use the server to the end where the suite expects it to (the suite ignores that in --suite
// mode). It fails as a whole when fewer than all the scenarios ran (see suiteRun.problems).
func TestConformanceClientScenarios(t *testing.T) {
	node, suite := suiteRuntime(t)
	bin := e2e.MustBinary(t)
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

	run := parseSuite(string(stdout))
	if run.total == "" || len(run.results) == 0 {
		t.Fatalf("no summary in the suite's output:\n%s\nstderr (tail):\n%s", stdout, tail(stderr.String(), 60))
	}
	passed, authPassed, auth := 0, 0, 0
	for _, e := range run.results {
		if e.passed {
			passed++
		}
		if strings.HasPrefix(e.name, "auth/") {
			auth++
			if e.passed {
				authPassed++
			}
		}
	}
	t.Logf("conformance suite: %s", run.total)
	t.Logf("scenarios passed: %d of %d (auth: %d of %d)", passed, len(run.results), authPassed, auth)
	for _, p := range run.problems() {
		t.Error(p)
	}
	if err == nil && passed < len(run.results) || err != nil && passed == len(run.results) {
		t.Errorf("the suite's exit status (%v) disagrees with its summary (%d of %d passed)", err, passed, len(run.results))
	}
	for _, e := range run.results {
		t.Run(e.name, func(t *testing.T) {
			t.Log(e.line)
			checks, clientOut, clientErr := scenarioResults(t, out, e.name)
			if !e.passed {
				t.Errorf("the suite fails %s:\n%s\nthe adapter's stderr (tail):\n%s", e.name, checks, tail(clientErr, 40))
			}
			if !allowClientError[e.name] && !strings.Contains(clientOut, completedLine) {
				t.Errorf("the adapter did not use the server to the end (no %q on its stdout); its stderr (tail):\n%s",
					completedLine, tail(clientErr, 40))
			}
		})
	}
}

// TestSuiteVerdictCannotPassVacuously pins what makes a run fail besides a failing scenario line: the
// verdict logic of TestConformanceClientScenarios on made-up suite outputs.
func TestSuiteVerdictCannotPassVacuously(t *testing.T) {
	lines := func(n int, failing string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "Running all suite (%d scenarios) in parallel...\n\n=== SUITE SUMMARY ===\n\n", n)
		for i := range n {
			name := fmt.Sprintf("auth/s%d", i)
			if name == failing {
				fmt.Fprintf(&b, "✗ %s: 3 passed, 1 failed\n", name)
				continue
			}
			fmt.Fprintf(&b, "✓ %s: 4 passed, 0 failed\n", name)
		}
		return b.String()
	}
	for _, tt := range []struct {
		name, stdout string
		problems     int
		failing      int
	}{
		{"all 26 pass", lines(26, "") + "\nTotal: 104 passed, 0 failed, 0 warnings\n", 0, 0},
		{"one fails", lines(26, "auth/s3") + "\nTotal: 103 passed, 1 failed, 0 warnings\n", 0, 1},
		{"fewer scenarios than the pinned suite has", lines(25, "") + "\nTotal: 100 passed, 0 failed, 0 warnings\n", 1, 0},
		{"fewer reported than announced", strings.Replace(lines(26, ""), "✓ auth/s7: 4 passed, 0 failed\n", "", 1) +
			"\nTotal: 100 passed, 0 failed, 0 warnings\n", 2, 0},
		{"no total", lines(26, ""), 1, 0},
		{"a total with warnings", lines(26, "") + "\nTotal: 104 passed, 0 failed, 1 warnings\n", 1, 0},
		{"a scenario twice", strings.Replace(lines(26, ""), "auth/s7:", "auth/s8:", 1) + "\nTotal: 104 passed, 0 failed, 0 warnings\n", 1, 0},
		{"nothing", "", 3, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := parseSuite(tt.stdout)
			failing := 0
			for _, e := range r.results {
				if !e.passed {
					failing++
				}
			}
			if got := r.problems(); len(got) != tt.problems || failing != tt.failing {
				t.Errorf("problems %q and %d failing, want %d problems and %d failing", got, failing, tt.problems, tt.failing)
			}
		})
	}
}

// check is one entry of the suite's checks.json.
type check struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Description  string `json:"description"`
	ErrorMessage string `json:"errorMessage"`
}

// scenarioResults returns the failed and warning checks of scenario (one per line) and the client's
// stdout and stderr, from the results directory the suite wrote for it (<out>/<scenario>-<timestamp>/).
func scenarioResults(t *testing.T, out, scenario string) (checks, stdout, stderr string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(out, scenario+"-*"))
	if len(dirs) != 1 {
		return fmt.Sprintf("(no single results directory for %s: %v)", scenario, dirs), "", ""
	}
	clientOut, _ := os.ReadFile(filepath.Join(dirs[0], "stdout.txt"))
	clientErr, _ := os.ReadFile(filepath.Join(dirs[0], "stderr.txt"))
	data, err := os.ReadFile(filepath.Join(dirs[0], "checks.json"))
	if err != nil {
		return err.Error(), string(clientOut), string(clientErr)
	}
	var all []check
	if err := json.Unmarshal(data, &all); err != nil {
		return err.Error(), string(clientOut), string(clientErr)
	}
	var b strings.Builder
	for _, c := range all {
		if c.Status == "FAILURE" || c.Status == "WARNING" {
			fmt.Fprintf(&b, "  [%s] %s: %s", c.ID, c.Status, c.Description)
			if c.ErrorMessage != "" {
				fmt.Fprintf(&b, " (%s)", c.ErrorMessage)
			}
			b.WriteString("\n")
		}
	}
	return b.String(), string(clientOut), string(clientErr)
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
