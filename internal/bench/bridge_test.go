//go:build linux

package bench

import (
	"context"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestBridgeBenchmark measures one tools/call round trip four ways against the same Go SDK server
// (SSE mode): direct with the token, through the proxy, through `authkeeper bridge` over stdio, and
// through the pinned npm mcp-remote over stdio given the same token with --header. One Go SDK client
// drives all four, one call at a time. It then reads each stdio process's resident memory, writes
// docs/bench-bridge.md and the latency plot when AUTHKEEPER_BENCH_REPORT is set, and fails if any
// call fails.
func TestBridgeBenchmark(t *testing.T) {
	out := os.Getenv(reportEnv)
	rounds, slice, warm := 5, time.Second, time.Second
	if out == "" {
		rounds, slice, warm = 1, 200*time.Millisecond, 100*time.Millisecond
	}
	bin := e2e.MustBinary(t) // before anything else: building needs the real HOME's caches
	node := testbed.NodeDir(t)
	e := newEnv(t)
	const mode = "sse"
	signIns := e.as.TokenRequests(t, "authorization_code")

	paths := []*stdioPath{{name: "direct"}, {name: "proxy"}, {name: "bridge"}, {name: "mcp-remote"}, {name: "mcp-remote --silent"}}
	paths[0].cs = e.session(t, mode, viaDirect, nil)
	paths[1].cs = e.session(t, mode, viaProxy, nil)
	bridge := exec.Command(bin, "bridge", mode)
	bridge.Env = e.childEnv
	paths[2].connect(t, bridge)
	tok, err := e.eng.Token(context.Background(), mode)
	if err != nil {
		t.Fatal(err)
	}
	// mcp-remote logs every message to stderr unless --silent: measured both ways.
	paths[3].connect(t, mcpRemote(t, node, e.urls[mode], tok))
	paths[4].connect(t, mcpRemote(t, node, e.urls[mode], tok, "--silent"))

	for _, p := range paths { // warm-up: connections, JIT, caches
		p.calls(t, warm)
		p.lat = nil
	}
	// Interleaved slices, so drift on the machine hits every path alike.
	for range rounds {
		for _, p := range paths {
			p.lat = append(p.lat, p.calls(t, slice)...)
		}
	}
	for _, p := range paths {
		slices.Sort(p.lat)
		if p.pid != 0 {
			if p.rssKiB, err = memKiB(p.pid, "VmRSS"); err != nil {
				t.Fatal(err)
			}
			if p.hwmKiB, err = memKiB(p.pid, "VmHWM"); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%-10s %5d calls: p50 %v p99 %v; RSS %s (peak %s)", p.name, len(p.lat), pct(p.lat, 50), pct(p.lat, 99), mib(p.rssKiB), mib(p.hwmKiB))
	}
	if n := e.as.TokenRequests(t, "authorization_code") - signIns; n != 0 {
		t.Errorf("%d sign-ins during the run: mcp-remote started its own OAuth flow", n)
	}
	if out == "" {
		return
	}
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	series := make([]series, len(paths))
	for i, p := range paths {
		series[i] = newSeries(p.name, p.lat)
	}
	png, err := percentilePlot("tools/call echo round trip, one client, one call at a time", series)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-latency.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-bridge.md"), bridgeReport(paths, rounds, slice, warm), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and %s", filepath.Join(dir, "bench-bridge.md"), filepath.Join(dir, "bench-latency.png"))
}

// mcpRemote returns the command that runs mcp-remote against url with tok in an Authorization header.
// It runs as an installed mcp-remote runs (its bin's shebang is node), so the pid is the node process
// itself; with a private HOME and config dir, it finds no stored tokens and writes none elsewhere.
func mcpRemote(t *testing.T, node, url, tok string, extra ...string) *exec.Cmd {
	args := append([]string{url, "--transport", "http-only", "--allow-http", "--header", "Authorization: Bearer " + tok}, extra...)
	cmd := exec.Command(filepath.Join(node, "node_modules", ".bin", "mcp-remote"), args...)
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "MCP_REMOTE_CONFIG_DIR=" + filepath.Join(home, ".mcp-auth"), "PATH=" + os.Getenv("PATH")}
	return cmd
}

// stdioPath is one way to reach the server, with what was measured on it.
type stdioPath struct {
	name   string
	cs     *mcp.ClientSession
	pid    int // the stdio process, 0 for the HTTP paths
	stderr *testbed.SyncBuffer
	lat    []time.Duration
	rssKiB int64
	hwmKiB int64
}

// connect starts cmd as a stdio MCP server under the Go SDK client.
func (p *stdioPath) connect(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	p.stderr = &testbed.SyncBuffer{}
	cmd.Stderr = p.stderr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v\nstderr:\n%s", p.name, err, p.stderr)
	}
	p.cs, p.pid = cs, cmd.Process.Pid
	t.Cleanup(func() {
		cs.Close()
		if t.Failed() {
			t.Logf("--- stderr of %s ---\n%s", p.name, p.stderr)
		}
	})
}

// calls calls echo back to back for d and returns every call's latency.
func (p *stdioPath) calls(t *testing.T, d time.Duration) []time.Duration {
	t.Helper()
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}
	var lat []time.Duration
	for until := time.Now().Add(d); time.Now().Before(until); {
		t0 := time.Now()
		res, err := p.cs.CallTool(context.Background(), params)
		if err != nil || res.IsError {
			t.Fatalf("%s: call failed: %v %+v", p.name, err, res)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}
