// Package testbed starts the real peers that authkeeper's integration tests run against, on loopback:
// an oidc-provider authorization server, MCP servers built on the official Go and TypeScript SDKs, a
// gnome-keyring Secret Service on a private D-Bus, and a virtual display with a notification daemon.
//
// Every fixture is one call from a test, is stopped by t.Cleanup, prints its peer's output when the
// test fails, and — when a prerequisite is missing — skips the test on a developer machine but fails
// it when the CI environment variable is set, so CI can never pass by skipping.
package testbed

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Need checks that every named binary is on PATH. A missing one fails the test under CI and skips it
// elsewhere, naming `make deps` as the fix. When a spawner is in use (AUTHKEEPER_SPAWNER, see
// spawner.go), a binary this side cannot find is looked up on the spawner's side instead, where
// StartProcess would run it.
func Need(t testing.TB, bins ...string) {
	t.Helper()
	addr := os.Getenv(spawnerEnv)
	for _, b := range bins {
		_, err := exec.LookPath(b)
		if err != nil && addr != "" {
			err = spawnerWhich(addr, b)
		}
		if err != nil {
			missing(t, "%s not found on PATH (run `make deps`): %v", b, err)
		}
	}
}

// missing reports an absent prerequisite: fatal under CI, a skip elsewhere.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("prerequisite missing: %s", msg)
	}
	t.Skipf("prerequisite missing: %s", msg)
}

// linuxOnly skips the test, saying why, on an OS where a fixture built on Linux-only software (D-Bus
// over a unix socket, gnome-keyring, Xvfb) cannot run. It skips even under CI: no setup can supply
// the fixture there, and the platform's own run covers the code it would test.
func linuxOnly(t testing.TB, fixture string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("%s runs on Linux only (this test binary is for %s)", fixture, runtime.GOOS)
	}
}

// NodeDir returns the absolute path of the bench's JavaScript package (internal/testbed/node), after
// checking that node is installed and `npm ci` has populated node_modules.
//
// The path comes from where this file was compiled; a Windows test binary built on Linux sees it as
// \work\... and makes it absolute on the current drive (under Wine, Z:, which maps to /), so the
// spawner can translate it back.
func NodeDir(t testing.TB) string {
	t.Helper()
	Need(t, "node")
	dir := benchDir(t, "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		missing(t, "%s/node_modules is absent (run `make deps`)", dir)
	}
	return dir
}

// benchDir returns the absolute path of the named directory next to this file.
func benchDir(t testing.TB, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir, err := filepath.Abs(filepath.Join(filepath.Dir(file), name))
	if err != nil {
		t.Fatalf("bench directory %s: %v", name, err)
	}
	return dir
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, for a program that must be told
// its port before it starts (oidc-provider's issuer names it, etcd's peers list it). The port is drawn
// at random below the kernel's ephemeral range (net.ipv4.ip_local_port_range), where the kernel never
// places an outgoing connection's local port or a listener on port 0: a port from that range, found
// free a moment ago, could be taken by any of the parallel tests' connections before the program
// binds it, seconds later for node (oidc-provider then fails with EADDRINUSE). Below it, only a
// program binding that fixed port, or another FreePort drawing the same one (about one chance in
// 16,000 per pair) before the first program binds it, can. Where the range cannot be read (not
// Linux), the kernel picks.
func FreePort(t testing.TB) int {
	t.Helper()
	if lo := ephemeralLow(); lo-minFreePort >= 1024 {
		for range 100 {
			port := minFreePort + rand.IntN(lo-minFreePort)
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				l.Close()
				return port
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// minFreePort is the lowest port FreePort draws: above the well-known and most registered services'.
const minFreePort = 16384

// ephemeralLow is the first port of the kernel's ephemeral range, or 0 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

// Process is a child process whose output is captured. Safe for concurrent use.
type Process struct {
	name string
	ctl  child
	done chan struct{}

	mu    sync.Mutex
	out   bytes.Buffer // stdout and stderr, interleaved
	lines []string     // complete stdout lines, for WaitLine
	cond  *sync.Cond
	err   error // the exit status, once done is closed
}

// child is how a Process reaches its running program: a local process group, or a program the
// spawner runs on the Linux side.
type child interface {
	// wait blocks until the program has exited (after its output was read) and returns its exit
	// status: nil for code 0, an *exec.ExitError or a *RemoteExitError otherwise.
	wait() error
	// signal sends s to the program and, on Unix, to its process group.
	signal(s childSignal) error
}

// childSignal is a signal Process can send, named apart from syscall's, which Windows lacks.
type childSignal int

const (
	sigTerm childSignal = iota + 1
	sigKill
	sigStop
	sigCont
)

// localChild is a program started here with os/exec, leading its own process group (on Unix).
type localChild struct{ cmd *exec.Cmd }

func (c localChild) wait() error                { return c.cmd.Wait() }
func (c localChild) signal(s childSignal) error { return signalGroup(c.cmd.Process, s) }

// StartProcess starts cmd in its own process group, captures its output, and registers a cleanup that
// stops it and, if the test failed, prints what it wrote. name labels the output. cmd must not have
// Stdout set; StartProcess sets Stderr.
//
// When AUTHKEEPER_SPAWNER is set and cmd's program is no executable this side can run (node, sh and
// the like for a Windows test binary under Wine), the program runs on the spawner's side instead (see
// spawner.go); the Process behaves the same, except that ExitErr reports a *RemoteExitError.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	if addr := os.Getenv(spawnerEnv); runsRemotely(cmd, addr) {
		return startRemote(t, name, cmd, addr)
	}
	p := newProcess(name)
	newProcessGroup(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cmd.Stderr = writerFunc(p.writeOut)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.ctl = localChild{cmd}
	go p.read(stdout)
	p.cleanup(t)
	return p
}

func newProcess(name string) *Process {
	p := &Process{name: name, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// cleanup registers the stop and the output dump at the end of the test.
func (p *Process) cleanup(t testing.TB) {
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", p.name, p.Output())
		}
	})
}

// writeOut records stderr output: in Output, but not among the lines WaitLine reads.
func (p *Process) writeOut(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// read collects stdout lines until EOF, then waits for the exit status and closes done.
func (p *Process) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.out.WriteString(line + "\n")
		p.lines = append(p.lines, line)
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	err := p.ctl.wait()
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
	close(p.done)
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// WaitLine waits up to timeout for a stdout line that starts with prefix and returns the rest of it.
// It fails the test if the process exits or the time runs out first.
func (p *Process) WaitLine(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer deadline.Stop()
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for _, l := range p.lines {
			if strings.HasPrefix(l, prefix) {
				return strings.TrimPrefix(l, prefix)
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %q; output:\n%s", p.name, p.err, prefix, p.out.String())
		default:
		}
		if time.Since(start) >= timeout {
			t.Fatalf("%s did not print %q within %v; output:\n%s", p.name, prefix, timeout, p.out.String())
		}
		p.cond.Wait()
	}
}

// Output returns everything the process has written so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is the process's exit status once Done is closed (nil for exit code 0).
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 5 * time.Second

// Stop sends SIGTERM to the process group, waits up to five seconds, then kills it. It is idempotent.
// On Windows, where there is no SIGTERM, it terminates the process at once.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.ctl.signal(sigTerm)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = p.ctl.signal(sigKill)
		<-p.done
	}
	return nil
}

// Kill sends SIGKILL to the process group and waits for it to exit.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.ctl.signal(sigKill)
	<-p.done
}

// suspend stops the process group with SIGSTOP until resume (Unix, local processes only).
func (p *Process) suspend() error { return p.ctl.signal(sigStop) }

// resume continues a suspended process group with SIGCONT.
func (p *Process) resume() error { return p.ctl.signal(sigCont) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers: a child's output copied by
// os/exec, a logger, or a command run in a goroutine, read by the test meanwhile.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
