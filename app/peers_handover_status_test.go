//go:build linux

// Linux only: owners are found through /proc/locks (lockHolders) and the bridge runs against the Linux
// bench.

package app

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStatusAndRefreshWaitForTheNextOwnerDuringAHandover: a bridge owns (no app ran) and hands over,
// as it does when the app or `serve` starts; the next owner takes the owner lock and is still
// starting — nothing answers, the lock is held — when `status` and `refresh` run. Both say they are
// waiting for the next owner, then answer from it, the real `serve`: status with serve's engine (not
// "not running", not the bridge), refresh refreshed by serve. The test holds the lock for the next
// owner's start, as AcquireOwner does, so that the moment lasts until both commands have said they
// wait, however slow the machine; then serve, already waiting to take over, takes the lock.
func TestStatusAndRefreshWaitForTheNextOwnerDuringAHandover(t *testing.T) {
	bin, b, lock := ownerlessBench(t)

	bridge := exec.Command(bin, "bridge", "bench")
	bridgeErr := &testbed.SyncBuffer{}
	bridge.Env, bridge.Stderr = os.Environ(), bridgeErr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.CommandTransport{Command: bridge, TerminateDuration: time.Second}, nil)
	if err != nil {
		t.Fatalf("bridge: %v\n%s", err, bridgeErr)
	}
	t.Cleanup(func() { cs.Close() })
	if h := lockHolders(t, lock); len(h) != 1 || h[0] != bridge.Process.Pid {
		t.Fatalf("owner lock held by %v, want the bridge (pid %d)", h, bridge.Process.Pid)
	}

	// The hand-over, as serve asks it; the next owner takes the lock as soon as the bridge lets go.
	if err := control.NewRemote(engine.OwnerSocket(b.paths)).Handover(ctx); err != nil {
		t.Fatalf("hand-over: %v", err)
	}
	next, err := keychain.LockFile(lock, 10*time.Second)
	if err != nil {
		t.Fatalf("the bridge did not let go of the owner lock: %v", err)
	}
	held := true
	defer func() {
		if held {
			next.Unlock()
		}
	}()
	serve := exec.Command(bin, "serve")
	serve.Env = append(os.Environ(), "AUTHKEEPER_PROXY_ADDR=127.0.0.1:0")
	p := testbed.StartProcess(t, "authkeeper serve", serve)

	type result struct {
		code           int
		stdout, stderr *testbed.SyncBuffer
	}
	start := func(args ...string) (*result, chan struct{}) {
		r := &result{stdout: &testbed.SyncBuffer{}, stderr: &testbed.SyncBuffer{}}
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.code = run(ctx, append([]string{"authkeeper"}, args...), env{stdout: r.stdout, stderr: r.stderr, getenv: os.Getenv})
		}()
		return r, done
	}
	before := b.as.TokenRequests(t, "refresh_token")
	st, stDone := start("status")
	rf, rfDone := start("refresh", "bench")
	const waiting = "the credentials are changing owner"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(st.stderr.String(), waiting) ||
		!strings.Contains(rf.stderr.String(), waiting); {
		ended := ""
		select {
		case <-stDone:
			ended = "status"
		case <-rfDone:
			ended = "refresh"
		case <-time.After(20 * time.Millisecond): // polling their output
		}
		if ended != "" || time.Now().After(deadline) {
			t.Fatalf("while the next owner starts, both must say they wait for it (ended: %q):\nstatus:\n%s%s\nrefresh:\n%s%s",
				ended, st.stderr, st.stdout, rf.stderr, rf.stdout)
		}
	}
	held = false
	if err := next.Unlock(); err != nil {
		t.Fatal(err)
	}
	<-stDone
	<-rfDone

	if st.code != 0 || !strings.Contains(st.stdout.String(), "running for") || strings.Contains(st.stdout.String(), "a bridge or command owns") {
		t.Errorf("status during the hand-over: exit %d\nstdout:\n%s\nstderr:\n%s\nwant serve's status", st.code, st.stdout, st.stderr)
	}
	if rf.code != 0 || strings.TrimSpace(rf.stdout.String()) != "Refreshed bench" || strings.Contains(rf.stderr.String(), "this process owns") {
		t.Errorf("refresh during the hand-over: exit %d\nstdout:\n%s\nstderr:\n%s\nwant it refreshed by the next owner", rf.code, rf.stdout, rf.stderr)
	}
	if h := lockHolders(t, lock); len(h) != 1 || h[0] != serve.Process.Pid {
		t.Errorf("owner lock held by %v after the hand-over, want serve (pid %d)\n%s", h, serve.Process.Pid, p.Output())
	}
	if n := b.as.TokenRequests(t, "refresh_token") - before; n < 1 {
		t.Errorf("%d refreshes after the hand-over, want serve's", n)
	}
	if ev := b.as.Events(t); countPrefix(ev, "refresh_token.reused")+countPrefix(ev, "grant.revoked") != 0 {
		t.Errorf("a refresh token was replayed across the hand-over: %v", ev)
	}
	t.Logf("status: %s%s\nrefresh: %s%s", st.stderr, st.stdout, rf.stderr, rf.stdout)
}

// fakeOwner serves handler on the control address that the owner lock of paths names, as an owner
// would (a unix socket), until the test ends.
func fakeOwner(t *testing.T, paths engine.Paths, handler http.Handler) net.Listener {
	t.Helper()
	addr := engine.OwnerSocket(paths)
	if err := os.MkdirAll(filepath.Dir(addr), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Remove(addr) // a socket left by a closed engine
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln) //nolint:errcheck // ends with the test
	t.Cleanup(func() { srv.Close() })
	return ln
}

// TestStatusReportsAnOwnerThatAnswersWithAnErrorAtOnce: an owner holds the lock and answers, but with
// HTTP 500. That is no hand-over: status reports the owner's error at once instead of saying the
// credentials are changing owner and waiting for another.
func TestStatusReportsAnOwnerThatAnswersWithAnErrorAtOnce(t *testing.T) {
	paths := privateHome(t)
	lock, err := keychain.LockFile(engine.OwnerLockPath(paths), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Unlock() })
	fakeOwner(t, paths, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"owner broken","code":"failed"}`, http.StatusInternalServerError)
	}))
	start := time.Now()
	code, stdout, stderr := runCLI(t, "status")
	if code == 0 || !strings.Contains(stderr, "owner broken") || strings.Contains(stderr, "changing owner") || time.Since(start) > 3*time.Second {
		t.Errorf("status against an owner answering 500: exit %d after %s\nstdout:\n%s\nstderr:\n%s\nwant its error at once",
			code, time.Since(start).Round(time.Millisecond), stdout, stderr)
	}
}

// TestRemoveMadeAgainAfterTheOwnerHandedOverSaysRemoved: the owner removes the server, then hands over
// before it answers (the connection closes unanswered); the command asks the next owner again, which
// no longer knows the server. That is the remove done, not a failure: "Removed bench", exit 0.
func TestRemoveMadeAgainAfterTheOwnerHandedOverSaysRemoved(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	b.eng.Close()
	next := make(chan *engine.Engine, 1)
	t.Cleanup(func() {
		select {
		case eng := <-next:
			eng.Close()
		default:
		}
	})
	first := make(chan net.Listener, 1) // the first owner's address, for the handler to close
	first <- fakeOwner(t, b.paths, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete {
			w.Write([]byte("{}")) // healthz: an owner answers
			return
		}
		// The first owner goes (its address closes) and the next one, which does the removal here on
		// its behalf, starts: the outcome is the same as the first owner's remove then hand-over.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close() // unanswered
		(<-first).Close()
		eng, err := newEngine(engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0"})
		if err == nil {
			err = eng.Start(context.Background())
		}
		if err != nil {
			t.Errorf("next owner: %v", err)
			return
		}
		next <- eng
		if err := eng.Remove(context.Background(), "bench"); err != nil {
			t.Errorf("remove: %v", err)
		}
	}))
	code, stdout, stderr := runCLI(t, "remove", "bench")
	if code != 0 || strings.TrimSpace(stdout) != "Removed bench" {
		t.Errorf("remove made again after the hand-over: exit %d\nstdout:\n%s\nstderr:\n%s\nwant Removed bench", code, stdout, stderr)
	}
}
