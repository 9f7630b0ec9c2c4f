//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// clientMain reads a clientSpec from stdin, runs it and writes the clientResult to stdout. It returns
// the exit code; errors go to stderr.
func clientMain(stdin io.Reader, stdout, stderr io.Writer) int {
	var spec clientSpec
	if err := json.NewDecoder(stdin).Decode(&spec); err != nil {
		fmt.Fprintf(stderr, "bench client: spec: %v\n", err)
		return 2
	}
	res := clientResult{Paths: make([]pathResult, len(spec.Paths))}
	for i, p := range spec.Paths {
		res.Paths[i].Name = p.Name
	}
	ctx := context.Background()
	var err error
	switch spec.Job {
	case jobLatency:
		err = latencyJob(ctx, spec, res.Paths)
	case jobStartup:
		err = startupJob(ctx, spec, res.Paths)
	case jobLoad:
		err = loadJob(ctx, spec, res.Paths)
	case jobCalls:
		err = callsJob(ctx, spec, res.Paths)
	default:
		err = fmt.Errorf("unknown job %q", spec.Job)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench client: %s: %v\n", spec.Job, err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "bench client: result: %v\n", err)
		return 1
	}
	return 0
}

// session is the client's connection over one path. Not safe for concurrent use, but its
// ClientSession is.
type session struct {
	path pathSpec
	cs   *mcp.ClientSession
	cmd  *exec.Cmd // the stdio process; nil for HTTP
	// stderr keeps the end of the stdio process's stderr, which the client reads as an MCP client does.
	stderr *tail
	// connect is the time Client.Connect took: for a stdio path, from starting the process to the
	// initialize result.
	connect time.Duration
}

// dial connects to the server over p.
func dial(ctx context.Context, p pathSpec) (*session, error) {
	s := &session{path: p}
	var tr mcp.Transport
	if p.stdio() {
		s.cmd = exec.Command(p.Command, p.Args...)
		s.cmd.Env = p.Env
		s.stderr = &tail{}
		s.cmd.Stderr = s.stderr
		// Long enough for a process to write a CPU profile or strace's table once stdin closes.
		tr = &mcp.CommandTransport{Command: s.cmd, TerminateDuration: 10 * time.Second}
	} else {
		base := &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}
		tr = &mcp.StreamableClientTransport{Endpoint: p.URL, DisableStandaloneSSE: true,
			HTTPClient: &http.Client{Transport: headers{h: p.Headers, base: base}}}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "authkeeper-bench", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t0 := time.Now()
	cs, err := c.Connect(ctx, tr, nil)
	s.connect = time.Since(t0)
	if err != nil {
		return nil, s.fail("connect", err)
	}
	s.cs = cs
	return s, nil
}

// fail wraps err with the path's name and, for a stdio path, the end of its stderr.
func (s *session) fail(what string, err error) error {
	if s.stderr == nil {
		return fmt.Errorf("%s: %s: %w", s.path.Name, what, err)
	}
	return fmt.Errorf("%s: %s: %w\n--- end of its stderr ---\n%s", s.path.Name, what, err, s.stderr)
}

// pid is the stdio process's; 0 for HTTP.
func (s *session) pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// close ends the session; for a stdio path it closes the process's stdin and waits for it to exit.
func (s *session) close() error {
	if err := s.cs.Close(); err != nil {
		return s.fail("close", err)
	}
	return nil
}

// memory reads the stdio process's VmRSS and VmHWM.
func (s *session) memory() (rss, hwm int64, err error) {
	if rss, err = memKiB(s.pid(), "VmRSS"); err != nil {
		return 0, 0, s.fail("memory", err)
	}
	if hwm, err = memKiB(s.pid(), "VmHWM"); err != nil {
		return 0, 0, s.fail("memory", err)
	}
	return rss, hwm, nil
}

// headers adds fixed headers to every request: the direct path's bearer token.
type headers struct {
	h    map[string]string
	base http.RoundTripper
}

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(h.h) > 0 {
		r = r.Clone(r.Context())
		for k, v := range h.h {
			r.Header.Set(k, v)
		}
	}
	return h.base.RoundTrip(r)
}

// tailMax is how much of a process's stderr a session keeps.
const tailMax = 16 << 10

// tail keeps the last tailMax bytes written to it. Safe for concurrent use.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - tailMax; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// dialAll connects every path, one after another, and closes those connected if one fails.
func dialAll(ctx context.Context, paths []pathSpec) ([]*session, error) {
	var ss []*session
	for _, p := range paths {
		s, err := dial(ctx, p)
		if err != nil {
			return nil, errors.Join(err, closeAll(ss))
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// closeAll closes every session at once (each stdio process is given its time to exit).
func closeAll(ss []*session) error {
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Go(func() { errs[i] = s.close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// turn returns the order in which n paths take their turn in round r: forwards in even rounds,
// backwards in odd ones, so that drift on the machine (and any cost of going first after another
// path) falls on every path alike.
func turn(r, n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
		if r%2 == 1 {
			order[i] = n - 1 - i
		}
	}
	return order
}
