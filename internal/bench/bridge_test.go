//go:build linux

package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// bridgePlan is how much TestBridgeBenchmark measures.
type bridgePlan struct {
	warm, slice  time.Duration // per path: the warm-up, then each round's turn
	rounds       int
	startRuns    int // start-ups of each stdio path
	loadSessions int // processes started at once per path
	loadRounds   int
	loadWarm     time.Duration
	loadWindow   time.Duration
	profileCalls int // calls made by the bridge that writes a CPU profile
	straceCalls  int // calls made by each process run under strace
}

var (
	bridgeFull = bridgePlan{warm: time.Second, slice: time.Second, rounds: 15, startRuns: 15, loadSessions: 10, loadRounds: 3,
		loadWarm: time.Second, loadWindow: 3 * time.Second, profileCalls: 3000, straceCalls: 1000}
	bridgeSmoke = bridgePlan{warm: 100 * time.Millisecond, slice: 200 * time.Millisecond, rounds: 1, startRuns: 2, loadSessions: 2,
		loadRounds: 1, loadWarm: 100 * time.Millisecond, loadWindow: 200 * time.Millisecond, profileCalls: 20, straceCalls: 20}
)

// The paths of the bridge benchmark.
const (
	pathDirect       = "direct"
	pathProxy        = "proxy"
	pathBridge       = "bridge"
	pathFloor        = "stdio floor"
	pathTray         = "bridge, tray binary"
	pathRemote       = "mcp-remote"
	pathRemoteSilent = "mcp-remote --silent"
)

// cpuProfileEnv names the file `authkeeper bridge` writes a Go CPU profile of its life to, at exit.
const cpuProfileEnv = "AUTHKEEPER_CPU_PROFILE"

// TestBridgeBenchmark measures a tools/call round trip six ways against one Go SDK server (SSE mode),
// all driven by one client process of their own (see clientEnv): direct with the token, through the
// proxy, through `authkeeper bridge` over stdio, and through the pinned npm mcp-remote over stdio
// given the same token with --header, as is and with --silent; and, for scale, over stdio to the
// instant server (see instantMain), the stdio hop alone. Then the start-up of the stdio
// processes, ten of each at once, a CPU profile of the bridge and the system calls of the bridge and
// of mcp-remote. It writes bench-bridge.md and the latency plot next to AUTHKEEPER_BENCH_REPORT when
// that is set, and fails if any call fails or mcp-remote signs in on its own.
func TestBridgeBenchmark(t *testing.T) {
	out := os.Getenv(reportEnv)
	plan := bridgeSmoke
	if out != "" {
		plan = bridgeFull
	}
	bin := e2e.MustBinary(t) // before anything else: building needs the real HOME's caches
	node := testbed.NodeDir(t)
	e := newEnv(t)
	const server = "sse"
	signIns := e.as.TokenRequests(t, "authorization_code")
	tok, err := e.eng.Token(t.Context(), server)
	if err != nil {
		t.Fatal(err)
	}
	direct := pathSpec{Name: pathDirect, URL: e.urls[server], Headers: map[string]string{"Authorization": "Bearer " + tok}}
	proxied := pathSpec{Name: pathProxy, URL: e.eng.ProxyEndpoint(server)}
	// The bridge as agents run it: the command `authkeeper clients` writes from an install that has
	// the headless build next to the tray binary, as the packages lay it out (see installedBridge);
	// and, for start-up, the same from the tray binary, as an install without the headless build runs it.
	tray := pathSpec{Name: pathTray, Command: bin, Args: []string{"bridge", server}, Env: e.childEnv}
	bridge := tray
	bridge.Name = pathBridge
	if lean := headlessBinary(t, out != ""); lean != "" {
		bridge.Command = installedBridge(t, bin, lean, e.childEnv, server)
	}
	// The floor under any stdio bridge: this test binary again, as a server that answers at once.
	floor := pathSpec{Name: pathFloor, Command: os.Args[0], Env: []string{instantEnv + "=1"}}
	remote := mcpRemote(t, node, e.urls[server], tok, pathRemote)
	silent := mcpRemote(t, node, e.urls[server], tok, pathRemoteSilent, "--silent")

	r := bridgeResults{plan: plan}
	r.latency = runClient(t, clientSpec{Job: jobLatency, Paths: []pathSpec{direct, proxied, bridge, remote, silent, floor},
		Warm: plan.warm, Rounds: plan.rounds, Slice: plan.slice}, tok).Paths
	sortRounds(r.latency)
	for _, p := range r.latency {
		all := pooled(p)
		t.Logf("%-20s %6d calls: p50 %v p99 %v", p.Name, len(all), pct(all, 50), pct(all, 99))
	}
	starts := []pathSpec{bridge, remote, silent}
	if bridge.Command != tray.Command {
		starts = append(starts, tray)
	}
	r.startup = runClient(t, clientSpec{Job: jobStartup, Paths: starts, Runs: plan.startRuns}, tok).Paths
	for _, p := range r.startup {
		t.Logf("%-20s start-up: median %s", p.Name, fmtMS(spreadOf(durationsMS(p.Startup)).med))
	}
	r.load = runClient(t, clientSpec{Job: jobLoad, Paths: []pathSpec{bridge, silent}, Sessions: plan.loadSessions,
		Rounds: plan.loadRounds, Warm: plan.loadWarm, Slice: plan.loadWindow}, tok).Paths
	sortRounds(r.load)
	for _, p := range r.load {
		all := pooled(p)
		t.Logf("%-20s ×%d at once: %d calls, p50 %v p99 %v, total RSS %s", p.Name, plan.loadSessions, len(all), pct(all, 50),
			pct(all, 99), mib(p.RSSKiB[0]))
	}
	r.profile = profileBridge(t, bridge, plan.profileCalls)
	r.strace = []straceSummary{straceOf(t, bridge, plan.straceCalls), straceOf(t, silent, plan.straceCalls, tok)}
	for _, s := range r.strace {
		if s.err != nil {
			t.Logf("%s: no syscall count: %v", s.path, s.err)
			continue
		}
		t.Logf("%-20s %.1f syscalls per request", s.path, s.perRequest())
	}
	if r.profile.err != nil {
		t.Logf("bridge CPU profile: %v", r.profile.err)
	} else if m := showing.FindString(r.profile.excerpt); m != "" {
		t.Logf("bridge CPU profile: %s", m)
	}
	if n := e.as.TokenRequests(t, "authorization_code") - signIns; n != 0 {
		t.Errorf("%d sign-ins during the run: mcp-remote started its own OAuth flow", n)
	}
	if out == "" || t.Failed() {
		return
	}
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	series := make([]series, len(r.latency))
	for i, p := range r.latency {
		series[i] = newSeries(p.Name, pooled(p))
	}
	png, err := percentilePlot("tools/call echo round trip, one client process, one call at a time", series)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-latency.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-bridge.md"), bridgeReport(r), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and %s", filepath.Join(dir, "bench-bridge.md"), filepath.Join(dir, "bench-latency.png"))
}

// headlessEnv names the directory `make headless` writes its builds to (see the Makefile).
const headlessEnv = "AUTHKEEPER_HEADLESS_DIR"

// headlessBinary returns this machine's headless build (no tray: no fyne, no cgo) in the directory
// headlessEnv names; "" when there is none. A report run (make bench builds it) fails without it; the
// smoke run in make test, whose headless targets may not include this machine's, goes on without it
// (its bridge is then the tray binary).
func headlessBinary(t *testing.T, report bool) string {
	t.Helper()
	dir := os.Getenv(headlessEnv)
	if dir == "" {
		if report {
			t.Fatalf("%s is unset: make bench sets it", headlessEnv)
		}
		return ""
	}
	bin := filepath.Join(dir, "authkeeper-"+runtime.GOOS+"-"+runtime.GOARCH)
	if _, err := os.Stat(bin); err != nil {
		if report {
			t.Fatalf("%s holds no headless build for this machine: %v", headlessEnv, err)
		}
		t.Logf("no headless build for this machine in %s: the bridge runs from the tray binary", headlessEnv)
		return ""
	}
	return bin
}

// installedBridge lays out an install as the .deb does — the tray binary bin as authkeeper, the
// headless build lean as authkeeper-headless beside it — runs that authkeeper's `clients --write
// claude-desktop SERVER` under env (the bench's home: its settings name the server), and returns the
// command the entry it wrote runs. It fails unless that command is the installed headless build
// running `bridge SERVER`: the bench measures what agents would run.
func installedBridge(t *testing.T, bin, lean string, env []string, server string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "usr", "bin")
	tray, headless := filepath.Join(dir, "authkeeper"), filepath.Join(dir, "authkeeper-headless")
	testbed.CopyFile(t, bin, tray)
	testbed.CopyFile(t, lean, headless)
	write := exec.Command(tray, "clients", "--write", "claude-desktop", server)
	write.Env = env
	if out, err := write.CombinedOutput(); err != nil {
		t.Fatalf("authkeeper clients --write claude-desktop %s: %v\n%s", server, err, out)
	}
	var cfg string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "XDG_CONFIG_HOME="); ok {
			cfg = v
		}
	}
	cmd, args := e2e.BridgeEntry(t, filepath.Join(cfg, "Claude", "claude_desktop_config.json"), server)
	if cmd != headless || !slices.Equal(args, []string{"bridge", server}) {
		t.Fatalf("clients wrote %q %q, want %q [bridge %s]", cmd, args, headless, server)
	}
	return cmd
}

// mcpRemote returns the path that runs mcp-remote against url with tok in an Authorization header.
// It runs as an installed mcp-remote runs (its bin's shebang is node), so the pid is the node process
// itself; with a private HOME and config dir, shared by the processes of the path as by one user's
// agent sessions, it finds no stored tokens and writes none elsewhere.
func mcpRemote(t *testing.T, node, url, tok, name string, extra ...string) pathSpec {
	home := t.TempDir()
	return pathSpec{Name: name, Command: filepath.Join(node, "node_modules", ".bin", "mcp-remote"),
		Args: append([]string{url, "--transport", "http-only", "--allow-http", "--header", "Authorization: Bearer " + tok}, extra...),
		Env:  []string{"HOME=" + home, "MCP_REMOTE_CONFIG_DIR=" + filepath.Join(home, ".mcp-auth"), "PATH=" + os.Getenv("PATH")}}
}

// profileBridge runs one more bridge with cpuProfileEnv set, makes calls calls, lets it exit, and
// summarises the profile it wrote with `go tool pprof -top`.
func profileBridge(t *testing.T, p pathSpec, calls int) profileSummary {
	file := filepath.Join(t.TempDir(), "bridge.pprof")
	p.Env = append(slices.Clone(p.Env), cpuProfileEnv+"="+file)
	runClient(t, clientSpec{Job: jobCalls, Paths: []pathSpec{p}, Calls: calls})
	s := profileSummary{what: fmt.Sprintf("one bridge process, %d tools/call", calls), share: -1}
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		s.err = fmt.Errorf("the bridge wrote no profile to the file %s names (a binary without that hook?)", cpuProfileEnv)
		return s
	} else if err != nil {
		s.err = err
		return s
	}
	s.excerpt, s.err = pprofTool("-top", "-nodecount=25", p.Command, file)
	return s
}

// straceSummary is the system calls of one stdio process over its whole life.
type straceSummary struct {
	path  string
	calls int // tools/call requests it answered; with initialize, calls+1 requests
	table straceTable
	err   error // why there is no table
}

// perRequest is the process's system calls divided by the requests it answered.
func (s straceSummary) perRequest() float64 { return float64(s.table.total) / float64(s.calls+1) }

// straceOf runs p under `strace -c -f` (every thread and child process counted) for calls calls.
func straceOf(t *testing.T, p pathSpec, calls int, secrets ...string) straceSummary {
	s := straceSummary{path: p.Name, calls: calls}
	st, err := exec.LookPath("strace")
	if err != nil {
		s.err = errors.New("strace is not installed")
		return s
	}
	file := filepath.Join(t.TempDir(), "strace.txt")
	p.Args = append([]string{"-c", "-f", "-o", file, p.Command}, p.Args...)
	p.Command = st
	runClient(t, clientSpec{Job: jobCalls, Paths: []pathSpec{p}, Calls: calls}, secrets...)
	data, err := os.ReadFile(file)
	if err != nil {
		s.err = err
		return s
	}
	s.table, s.err = parseStrace(string(data))
	return s
}

// sortRounds sorts each round's latencies.
func sortRounds(ps []pathResult) {
	for _, p := range ps {
		for _, r := range p.Rounds {
			slices.Sort(r)
		}
	}
}

// pooled is every call of every round, sorted.
func pooled(p pathResult) []time.Duration {
	all := slices.Concat(p.Rounds...)
	slices.Sort(all)
	return all
}

func durationsMS(ds []time.Duration) []float64 {
	v := make([]float64, len(ds))
	for i, d := range ds {
		v[i] = msOf(d)
	}
	return v
}
