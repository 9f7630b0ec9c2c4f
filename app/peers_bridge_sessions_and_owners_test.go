//go:build linux

// Linux only: owners are found through /proc/locks and the bridge runs against the Linux bench.

package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The real authkeeper bridge under real MCP clients: one client session lives across token
// rotations and across changes of owner (bridges started together, a bridge that owned handing over
// to serve and back), and the proxy's auth failures reach the client intact.

// tokenSampler collects every access token the owner hands out while a test runs, so that the test
// can check none of them leaked into any output.
func tokenSampler(t *testing.T, eng *engine.Engine) (stop func() []string) {
	t.Helper()
	seen := map[string]bool{}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if tok, err := eng.Token(context.Background(), "bench"); err == nil {
				seen[tok] = true
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() []string {
		close(done)
		<-finished
		out := make([]string, 0, len(seen))
		for tok := range seen {
			out = append(out, tok)
		}
		return out
	}
}

// TestBridgeTSClientCallsAcrossFiveRotationsInOneSession runs the TypeScript SDK's stdio client
// against the real `authkeeper bridge` binary, which reaches this test's owner over the control
// socket, with access tokens that live 3 seconds: one client session makes tool calls for 20 seconds
// without reconnecting and without a failed call while the owner rotates the token at least five
// times, and the server sees at least five different tokens on that one session. Neither the client's
// output nor the bridge's stderr contains a token or the proxy key.
func TestBridgeTSClientCallsAcrossFiveRotationsInOneSession(t *testing.T) {
	bin := e2e.MustBinary(t) // before newBench moves HOME
	b := newBench(t, benchOptions{Home: true, AS: testbed.AuthServerOptions{AccessTokenTTL: 3 * time.Second}})
	node := testbed.NodeDir(t)
	before := b.as.TokenRequests(t, "refresh_token")
	sample := tokenSampler(t, b.eng)

	cmd := exec.Command("node", filepath.Join(node, "bridge-client.mjs"))
	cmd.Env = append(os.Environ(), "AK_BIN="+bin, "AK_SERVER=bench", "AK_SECONDS=20", "AK_INTERVAL_MS=100")
	p := testbed.StartProcess(t, "bridge-client", cmd)
	doneLine := p.WaitLine(t, `{"event":"done"`, 90*time.Second)
	tokens := sample()
	<-p.Done()

	var calls, failed int
	expiries := map[int64]bool{}
	for _, line := range strings.Split(p.Output(), "\n") {
		if !strings.HasPrefix(line, `{"event":"call"`) {
			continue
		}
		var c struct {
			Tool      string `json:"tool"`
			OK        bool   `json:"ok"`
			Error     string `json:"error"`
			ExpiresAt int64  `json:"expires_at"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		calls++
		if !c.OK {
			failed++
			t.Errorf("call %d (%s) failed: %s", calls, c.Tool, c.Error)
		}
		if c.ExpiresAt > 0 {
			expiries[c.ExpiresAt] = true
		}
	}
	rotations := b.as.TokenRequests(t, "refresh_token") - before
	t.Logf("%d calls (%d failed) in one session, %d rotations, %d distinct tokens seen by the server; %s",
		calls, failed, rotations, len(expiries), `{"event":"done"`+doneLine)
	if calls < 50 {
		t.Errorf("only %d calls in 20 s", calls)
	}
	if rotations < 5 {
		t.Errorf("%d rotations during the session, want at least 5", rotations)
	}
	if len(expiries) < 5 {
		t.Errorf("the server saw %d distinct tokens on the session, want at least 5", len(expiries))
	}
	if ev := b.as.Events(t); countPrefix(ev, "refresh_token.reused")+countPrefix(ev, "grant.revoked") != 0 {
		t.Errorf("a refresh token was replayed: %v", ev)
	}
	assertNoSecrets(t, "client output and bridge stderr", p.Output(), append(tokens, b.eng.ProxyKey())...)
}

// ownerlessBench is the real binary, an env bench with 3 s tokens whose engine has stopped (no owner
// runs), and the owner lock's path; it skips where /proc/locks cannot be read.
func ownerlessBench(t *testing.T) (bin string, b *bench, lock string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/locks")
	}
	bin = e2e.MustBinary(t) // before newBench moves HOME
	b = newBench(t, benchOptions{Home: true, AS: testbed.AuthServerOptions{AccessTokenTTL: 3 * time.Second}})
	b.eng.Close()
	return bin, b, engine.OwnerLockPath(b.paths)
}

// lockHolders returns the pids holding a flock on path, from /proc/locks.
func lockHolders(t *testing.T, path string) []int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	f, err := os.Open("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 1: FLOCK  ADVISORY  WRITE 12345 00:2d:123456 0 EOF
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) == 3 && dev[2] == strconv.FormatUint(ino, 10) {
			pid, _ := strconv.Atoi(fields[4])
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestBridgesStartedTogetherShareOneOwner starts three `authkeeper bridge` processes at once, each under
// a Go SDK stdio client, with no owner running: exactly one of them becomes the owner (it alone holds
// the owner lock) and all three make calls across token rotations with no refresh token ever
// replayed. When the owner bridge is killed, one of the other two takes over and both keep working on
// their sessions.
func TestBridgesStartedTogetherShareOneOwner(t *testing.T) {
	bin, b, lock := ownerlessBench(t)

	type bridgeProc struct {
		cmd    *exec.Cmd
		cs     *mcp.ClientSession
		stderr *testbed.SyncBuffer
	}
	bridges := make([]*bridgeProc, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range bridges {
		bp := &bridgeProc{cmd: exec.Command(bin, "bridge", "bench"), stderr: &testbed.SyncBuffer{}}
		bp.cmd.Env, bp.cmd.Stderr = os.Environ(), bp.stderr
		bridges[i] = bp
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := mcp.NewClient(&mcp.Implementation{Name: fmt.Sprintf("agent-%d", i), Version: "1"}, nil)
			cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: bp.cmd, TerminateDuration: time.Second}, nil)
			if err != nil {
				errs <- fmt.Errorf("bridge %d: %w\n%s", i, err, bp.stderr)
				return
			}
			bp.cs = cs
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, bp := range bridges {
			if bp.cs != nil {
				bp.cs.Close()
			}
		}
	})
	sample := &tokenSet{}
	key, err := engine.LoadProxyKey(b.paths.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	sample.Add(key)
	callAll := func(round string, live []*bridgeProc) {
		t.Helper()
		deadline := time.Now().Add(7 * time.Second) // two rotations or more
		for n := 0; time.Now().Before(deadline); n++ {
			for i, bp := range live {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				text := fmt.Sprintf("%s-%d-%d", round, i, n)
				res, err := bp.cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
				cancel()
				if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != text {
					t.Fatalf("%s: bridge %d call %d: %v %v\nstderr:\n%s", round, i, n, err, res, bp.stderr)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	owner := func(live []*bridgeProc) *bridgeProc {
		t.Helper()
		holders := lockHolders(t, lock)
		if len(holders) != 1 {
			t.Fatalf("%d processes hold the owner lock (%v), want 1", len(holders), holders)
		}
		for _, bp := range live {
			if bp.cmd.Process.Pid == holders[0] {
				return bp
			}
		}
		t.Fatalf("the owner lock is held by pid %d, none of the live bridges", holders[0])
		return nil
	}

	before := b.as.TokenRequests(t, "refresh_token")
	callAll("together", bridges)
	first := owner(bridges)
	sample.addFromKeychain(t)

	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.cs.Close() // reaps the killed process
	first.cs = nil
	var rest []*bridgeProc
	for _, bp := range bridges {
		if bp != first {
			rest = append(rest, bp)
		}
	}
	callAll("after-takeover", rest)
	second := owner(rest)
	t.Logf("owner pid %d was killed; pid %d took over", first.cmd.Process.Pid, second.cmd.Process.Pid)
	sample.addFromKeychain(t)

	rotations := b.as.TokenRequests(t, "refresh_token") - before
	t.Logf("%d rotations over both rounds", rotations)
	if rotations < 4 {
		t.Errorf("%d rotations, want at least 4: the calls did not span token lifetimes", rotations)
	}
	if ev := b.as.Events(t); countPrefix(ev, "refresh_token.reused")+countPrefix(ev, "grant.revoked") != 0 {
		t.Errorf("a refresh token was replayed (two owners refreshing?): %v", ev)
	}
	for i, bp := range bridges {
		assertNoSecrets(t, fmt.Sprintf("bridge %d stderr", i), bp.stderr.String(), sample.List()...)
	}
}

// TestBridgeRelaysTheProxysAuthFailure runs the real binary under a Go SDK stdio client: a call made
// after the user signed out fails with the proxy's structured auth_failure (code and data intact), and
// the same session works again once the user signs in; a bridge for an unknown name exits 1 before speaking MCP, saying why on
// stderr and writing nothing to stdout.
func TestBridgeRelaysTheProxysAuthFailure(t *testing.T) {
	bin := e2e.MustBinary(t) // before newBench moves HOME
	b := newBench(t, benchOptions{Home: true})
	stderr := &testbed.SyncBuffer{}
	cmd := exec.Command(bin, "bridge", "bench")
	cmd.Env, cmd.Stderr = os.Environ(), stderr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).
		Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr)
	}
	defer cs.Close()
	call := func() error {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("call before sign-out: %v\n%s", err, stderr)
	}
	tok, _ := b.eng.Token(ctx, "bench")
	if err := b.eng.Logout(ctx, "bench"); err != nil {
		t.Fatal(err)
	}
	err = call()
	var wire *jsonrpc.Error
	if !errors.As(err, &wire) || wire.Code != proxy.CodeAuthFailure || !strings.Contains(string(wire.Data), `"type":"auth_failure"`) {
		t.Fatalf("call after sign-out: %v; want the proxy's auth_failure", err)
	}
	if err := b.eng.SignIn(ctx, "bench", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := call(); err != nil {
		t.Errorf("call on the same session after signing in again: %v\n%s", err, stderr)
	}
	assertNoSecrets(t, "bridge stderr", stderr.String(), tok, b.eng.ProxyKey())

	unknown := exec.Command(bin, "bridge", "nosuch")
	unknown.Env = os.Environ()
	var out, errOut strings.Builder
	unknown.Stdout, unknown.Stderr = &out, &errOut
	err = unknown.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || out.Len() != 0 || !strings.Contains(errOut.String(), `"nosuch"`) {
		t.Errorf("bridge nosuch: %v, stdout %q, stderr %q; want exit 1, nothing, a reason", err, out.String(), errOut.String())
	}
}

// TestServeTakesOverFromABridgeThatOwned: a bridge started before any app owns the credentials (on a
// random proxy port). `authkeeper serve` started next takes over — it holds the owner lock and the
// stable proxy port — while the bridge's session carries on across token rotations, now refreshed by
// serve, with no refresh token replayed. When serve stops, the same session carries on again: the
// bridge owns once more.
func TestServeTakesOverFromABridgeThatOwned(t *testing.T) {
	bin, b, lock := ownerlessBench(t)

	bridge := exec.Command(bin, "bridge", "bench")
	bridge.Env, bridge.Stderr = os.Environ(), &testbed.SyncBuffer{}
	stderr := bridge.Stderr.(*testbed.SyncBuffer)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.CommandTransport{Command: bridge, TerminateDuration: time.Second}, nil)
	cancel()
	if err != nil {
		t.Fatalf("bridge: %v\n%s", err, stderr)
	}
	t.Cleanup(func() { cs.Close() })
	call := func(round string, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for n := 0; n == 0 || time.Now().Before(deadline); n++ {
			text := fmt.Sprintf("%s-%d", round, n)
			cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
			ccancel()
			if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != text {
				t.Fatalf("%s: call %d: %v %v\nbridge stderr:\n%s", round, n, err, res, stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	call("bridge-owns", time.Second)
	if h := lockHolders(t, lock); len(h) != 1 || h[0] != bridge.Process.Pid {
		t.Fatalf("owner lock held by %v, want the bridge (pid %d)", h, bridge.Process.Pid)
	}
	before := b.as.TokenRequests(t, "refresh_token")

	stable := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	serve := exec.Command(bin, "serve")
	serve.Env = append(os.Environ(), "AUTHKEEPER_PROXY_ADDR="+stable)
	p := testbed.StartProcess(t, "authkeeper serve", serve)
	p.WaitLine(t, "authkeeper ", 60*time.Second)
	// stderr reaches the test through a copying goroutine of its own, so it may trail stdout's banner.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.Output(), "took over the credentials"); {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not say it took over:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond) // polling another process's output
	}
	if h := lockHolders(t, lock); len(h) != 1 || h[0] != serve.Process.Pid {
		t.Fatalf("owner lock held by %v after serve started, want serve (pid %d)", h, serve.Process.Pid)
	}
	if h, err := control.NewRemote(engine.OwnerSocket(b.paths)).Health(context.Background()); err != nil || h.Temporary || h.ProxyURL != "http://"+stable {
		t.Fatalf("owner after the take-over: %+v, %v; want serve on %s", h, err, stable)
	}
	call("serve-owns", 7*time.Second) // two rotations or more, refreshed by serve
	if n := b.as.TokenRequests(t, "refresh_token") - before; n < 2 {
		t.Errorf("%d refreshes while serve owned, want at least 2", n)
	}

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	call("bridge-owns-again", 4*time.Second)
	if h := lockHolders(t, lock); len(h) != 1 || h[0] != bridge.Process.Pid {
		t.Errorf("owner lock held by %v after serve stopped, want the bridge again", h)
	}
	if ev := b.as.Events(t); countPrefix(ev, "refresh_token.reused")+countPrefix(ev, "grant.revoked") != 0 {
		t.Errorf("a refresh token was replayed across the hand-overs: %v", ev)
	}
	sample := &tokenSet{}
	sample.addFromKeychain(t)
	assertNoSecrets(t, "bridge stderr", stderr.String(), sample.List()...)
	assertNoSecrets(t, "serve output", p.Output(), sample.List()...)
}
