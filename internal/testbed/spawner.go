package testbed

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The spawner lets a test binary that cannot start the bench's peers itself have them started on the
// Linux side: a Windows test binary under Wine cannot exec Linux's node, but it can reach a TCP server
// on 127.0.0.1. The Linux side runs StartSpawner and hands the value it returns to the test binary in
// AUTHKEEPER_SPAWNER; StartProcess then sends there every command it cannot find locally.
//
// Authentication: the spawner runs any command it is sent, as the user running the tests (root in CI),
// and any local process can connect to a loopback port. So StartSpawner draws a token of 32 random
// bytes, and the value it returns is "<token in hex>@127.0.0.1:PORT", to be passed on unchanged and
// kept out of logs. Every connection's first frame carries the token; the server compares it in
// constant time and, on a mismatch or any other first frame, answers 'n' and closes the connection
// without parsing a request or running anything.
//
// Protocol: one TCP connection per program. Both directions carry frames: a kind byte, the payload's
// length as a big-endian uint32 (at most maxFrame), the payload. Frames rather than a request line
// followed by raw bytes, because they keep stderr apart from the stdout lines WaitLine reads (as a
// local Process does), let a signal travel after stdin was closed, and leave no output that could be
// mistaken for the exit trailer.
//
//	client → server
//	  'a'  first frame: the token, as the hex text of the value (at most maxTokenFrame bytes)
//	  'r'  second frame: run the spawnRequest (JSON) in the payload
//	  'w'  second frame: only look spawnRequest.Path up on the server's PATH
//	  'i'  bytes for the program's stdin
//	  'c'  close the program's stdin
//	  'g'  one byte, a childSignal, for the program's process group
//	server → client
//	  'n'  only frame: the token was wrong or missing (payload: a message); the server then closes
//	  's'  the program started (empty payload)
//	  'o'  bytes the program wrote to stdout
//	  'e'  bytes the program wrote to stderr
//	  'x'  last frame: the spawnExit (JSON); after 'w', code 0 means found. The server then closes.
//
// When the client's side of the connection ends (EOF or error) while the program runs, the server
// sends SIGTERM to its process group and SIGKILL spawnerGrace later. The server translates Windows
// paths in Path, Dir, every argument and every environment value (see hostPath). It runs whatever any
// process that holds the token asks for as long as it listens, so it listens on loopback only, for
// one test.
const (
	frameAuth, frameRun, frameWhich, frameStdin, frameCloseStdin, frameSignal = 'a', 'r', 'w', 'i', 'c', 'g'
	frameDenied, frameStarted, frameStdout, frameStderr, frameExit            = 'n', 's', 'o', 'e', 'x'

	maxFrame      = 1 << 20
	maxTokenFrame = 256 // what the server reads before it knows the client holds the token
)

// spawnerEnv names the variable that holds the spawner's value (<token>@127.0.0.1:PORT).
const spawnerEnv = "AUTHKEEPER_SPAWNER"

// errSpawnerToken is the spawner refusing a connection whose token is wrong or missing.
var errSpawnerToken = errors.New("no spawner token, or a wrong one (" + spawnerEnv +
	" must hold the value StartSpawner returned, unchanged)")

// spawnRequest is what the client asks the spawner to run.
type spawnRequest struct {
	// Path is the program: a name looked up on the spawner's PATH, or a path.
	Path string `json:"path"`
	// Args are the arguments after the program's name.
	Args []string `json:"args,omitempty"`
	// Dir is the working directory; empty means the spawner's own.
	Dir string `json:"dir,omitempty"`
	// Env holds only the entries the caller added to the test process's environment (as it was when
	// the test binary started); the program gets the spawner's environment plus these.
	Env []string `json:"env,omitempty"`
}

// spawnExit is how the program ended, or why it never ran.
type spawnExit struct {
	Code   int    `json:"code"`   // the exit code; -1 for a signal or a failure to start
	Status string `json:"status"` // "exit status 3", "signal: killed", or the error
}

// RemoteExitError is the exit status of a program run through the spawner that did not exit with
// code 0: what a local Process reports as an *exec.ExitError.
type RemoteExitError struct {
	// Code is the exit code, or -1 if a signal ended the program or it could not be waited for.
	Code int
	// Status says how it ended, worded as os.ProcessState does ("exit status 3", "signal: killed").
	Status string
}

func (e *RemoteExitError) Error() string { return e.Status }

// startEnv is the environment the test binary started with: what the spawner's side is assumed to
// share, so that only later additions (t.Setenv, cmd.Env) travel with a request. Never modified.
var startEnv = os.Environ()

// runsRemotely reports whether StartProcess should hand cmd to the spawner at addr: when there is
// one and cmd's program is not an executable this side can run (exec.Command's lookup failed, or
// the path names no executable here, as a Linux /bin/sh for a Windows binary).
func runsRemotely(cmd *exec.Cmd, addr string) bool {
	if addr == "" {
		return false
	}
	if cmd.Err != nil {
		return true
	}
	_, err := exec.LookPath(cmd.Path)
	return err != nil
}

// addedEnv returns the entries of env (nil meaning the current environment) that the test binary
// did not start with.
func addedEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	var added []string
	for _, kv := range env {
		if !slices.Contains(startEnv, kv) {
			added = append(added, kv)
		}
	}
	return added
}

// spawnerConn is one connection to the spawner, for one request. Not safe for concurrent use.
type spawnerConn struct {
	net.Conn
	r     *bufio.Reader
	addr  string // 127.0.0.1:PORT, what errors name: the token stays out of them
	token string
}

// dialSpawner connects to the spawner that value (AUTHKEEPER_SPAWNER's form) names.
func dialSpawner(value string) (*spawnerConn, error) {
	token, addr, ok := strings.Cut(value, "@")
	if _, _, err := net.SplitHostPort(addr); !ok || token == "" || err != nil {
		// Never the value itself, nor any part of it: whatever it holds may be the token.
		return nil, fmt.Errorf("%s is not <token>@<host>:<port> (%s): %w", spawnerEnv, valueShape(value), errSpawnerToken)
	}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("spawner %s: %w", addr, err)
	}
	return &spawnerConn{Conn: conn, r: bufio.NewReader(conn), addr: addr, token: token}, nil
}

// valueShape describes what is wrong with a malformed AUTHKEEPER_SPAWNER value without quoting it.
func valueShape(value string) string {
	token, addr, ok := strings.Cut(value, "@")
	switch {
	case value == "":
		return "it is empty"
	case !ok:
		return fmt.Sprintf("%d characters and no @", len(value))
	case token == "":
		return "nothing before the @"
	default:
		return fmt.Sprintf("%d characters after the @, not a host:port", len(addr))
	}
}

// ask sends the token and then req in a frame of kind (frameRun or frameWhich), and reads the
// spawner's first answer. A refusal is an errSpawnerToken.
func (c *spawnerConn) ask(kind byte, req spawnRequest) (answer byte, payload []byte, err error) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	b, err := json.Marshal(req)
	if err != nil {
		return 0, nil, err
	}
	// One write for both frames, so that a refusing server finds the request already read.
	var buf bytes.Buffer
	if err := writeFrame(&buf, frameAuth, []byte(c.token)); err != nil {
		return 0, nil, err
	}
	if err := writeFrame(&buf, kind, b); err != nil {
		return 0, nil, err
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return 0, nil, fmt.Errorf("spawner %s: %w", c.addr, err)
	}
	answer, payload, err = readFrame(c.r)
	switch {
	case err != nil:
		return 0, nil, fmt.Errorf("spawner %s closed the connection before answering: %w", c.addr, err)
	case answer == frameDenied:
		return 0, nil, fmt.Errorf("spawner %s refused the connection: %w", c.addr, errSpawnerToken)
	}
	return answer, payload, nil
}

// run asks the spawner to start req's program and returns once it has started.
func (c *spawnerConn) run(req spawnRequest) error {
	kind, payload, err := c.ask(frameRun, req)
	if err != nil {
		return err
	}
	if kind != frameStarted {
		var ex spawnExit
		_ = json.Unmarshal(payload, &ex)
		return fmt.Errorf("spawner %s: %s", c.addr, ex.Status)
	}
	return nil
}

// spawnerWhich asks the spawner that value names whether it finds bin on its PATH.
func spawnerWhich(value, bin string) error {
	c, err := dialSpawner(value)
	if err != nil {
		return err
	}
	defer c.Close()
	kind, payload, err := c.ask(frameWhich, spawnRequest{Path: bin})
	if err != nil {
		return err
	}
	var ex spawnExit
	if err := json.Unmarshal(payload, &ex); kind != frameExit || err != nil {
		return fmt.Errorf("spawner %s: bad answer %q (%v)", c.addr, kind, err)
	}
	if ex.Code != 0 {
		return fmt.Errorf("on the spawner's side: %s", ex.Status)
	}
	return nil
}

// startRemote is StartProcess through the spawner that value (AUTHKEEPER_SPAWNER's form) names.
func startRemote(t testing.TB, name string, cmd *exec.Cmd, value string) *Process {
	t.Helper()
	if cmd.Stdout != nil {
		t.Fatalf("%s: exec: Stdout already set", name)
	}
	req := spawnRequest{Path: cmd.Path, Args: cmd.Args[1:], Dir: cmd.Dir, Env: addedEnv(cmd.Env)}
	if req.Dir == "" { // a local child would start in our working directory: so does the remote one
		if wd, err := os.Getwd(); err == nil {
			req.Dir = wd
		}
	}
	sc, err := dialSpawner(value)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	if err := sc.run(req); err != nil {
		sc.Close()
		t.Fatalf("start %s: %v", name, err)
	}

	p := newProcess(name)
	c := &remoteChild{conn: sc.Conn, exited: make(chan struct{})}
	p.ctl = c
	stdout, stdoutW := io.Pipe()
	go c.receive(sc.r, stdoutW, writerFunc(p.writeOut))
	go p.read(stdout)
	go c.sendStdin(cmd.Stdin)
	p.cleanup(t)
	return p
}

// remoteChild is a program the spawner runs, reached through conn.
type remoteChild struct {
	conn   net.Conn
	exited chan struct{} // closed once err is set
	err    error

	wmu sync.Mutex // serializes frames written to conn
}

// receive dispatches the spawner's frames until the exit trailer or a broken connection.
func (c *remoteChild) receive(r *bufio.Reader, stdout *io.PipeWriter, stderr io.Writer) {
	defer c.conn.Close()
	defer stdout.Close()
	defer close(c.exited)
	for {
		kind, payload, err := readFrame(r)
		if err != nil {
			c.err = fmt.Errorf("spawner connection lost before the exit status: %w", err)
			return
		}
		switch kind {
		case frameStdout:
			_, _ = stdout.Write(payload)
		case frameStderr:
			_, _ = stderr.Write(payload)
		case frameExit:
			var ex spawnExit
			if err := json.Unmarshal(payload, &ex); err != nil {
				c.err = fmt.Errorf("spawner: bad exit status %q: %w", payload, err)
			} else if ex.Code != 0 {
				c.err = &RemoteExitError{Code: ex.Code, Status: ex.Status}
			}
			return
		}
	}
}

// sendStdin copies in (nil: none) to the program's stdin, then closes it. It does not close in.
func (c *remoteChild) sendStdin(in io.Reader) {
	if in != nil {
		buf := make([]byte, 32*1024)
		for {
			n, err := in.Read(buf)
			if n > 0 && c.write(frameStdin, buf[:n]) != nil {
				return
			}
			if err != nil {
				break
			}
		}
	}
	_ = c.write(frameCloseStdin, nil)
}

func (c *remoteChild) write(kind byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeFrame(c.conn, kind, payload)
}

func (c *remoteChild) wait() error {
	<-c.exited
	return c.err
}

func (c *remoteChild) signal(s childSignal) error {
	select {
	case <-c.exited:
		return os.ErrProcessDone
	default:
	}
	return c.write(frameSignal, []byte{byte(s)})
}

// writeFrame writes one frame.
func writeFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("frame %q of %d bytes exceeds %d", kind, len(payload), maxFrame)
	}
	b := make([]byte, 5, 5+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	_, err := w.Write(append(b, payload...))
	return err
}

// readFrame reads one frame of at most maxFrame bytes; the payload is a new slice.
func readFrame(r *bufio.Reader) (kind byte, payload []byte, err error) {
	return readFrameMax(r, maxFrame)
}

// readFrameMax reads one frame of at most limit bytes; the payload is a new slice.
func readFrameMax(r *bufio.Reader, limit uint32) (kind byte, payload []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > limit {
		return 0, nil, fmt.Errorf("frame %q of %d bytes exceeds %d", h[0], n, limit)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, errors.Join(io.ErrUnexpectedEOF, err)
	}
	return h[0], payload, nil
}
