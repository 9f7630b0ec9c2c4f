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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need checks that every named binary is on PATH. A missing one fails the test under CI and skips it
// elsewhere, naming `make deps` as the fix.
func Need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			missing(t, "%s not found on PATH (run `make deps`)", b)
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

// NodeDir returns the absolute path of the bench's JavaScript package (internal/testbed/node), after
// checking that node is installed and `npm ci` has populated node_modules.
func NodeDir(t testing.TB) string {
	t.Helper()
	Need(t, "node")
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		missing(t, "%s/node_modules is absent (run `make deps`)", dir)
	}
	return dir
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a child process whose output is captured. Safe for concurrent use.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	out   bytes.Buffer // stdout and stderr, interleaved
	lines []string     // complete stdout lines, for WaitLine
	cond  *sync.Cond
	err   error // the exit status, once done is closed
}

// StartProcess starts cmd in its own process group, captures its output, and registers a cleanup that
// stops it and, if the test failed, prints what it wrote. name labels the output.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.out.Write(b)
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.Output())
		}
	})
	return p
}

func (p *Process) read(r interface{ Read([]byte) (int, error) }) {
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
	err := p.cmd.Wait()
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

// Stop sends SIGTERM to the process group, waits up to five seconds, then kills it. It is idempotent.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
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
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

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
