package testbed

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// spawnerGrace is how long the spawner waits after SIGTERM before SIGKILL, once a client is gone.
	spawnerGrace = 3 * time.Second
	// requestTimeout bounds how long a new connection may take to send the token and its request.
	requestTimeout = 30 * time.Second
)

// StartSpawner starts the spawner (protocol in spawner.go) on 127.0.0.1, in this process, and returns
// the value for AUTHKEEPER_SPAWNER: opaque to callers, it holds a fresh secret token and the address,
// and must be passed on unchanged and never logged. Cleanup closes every connection, which stops every
// program it started, and waits for them to exit. Windows paths in requests are translated for the
// Wine prefix named by this process's WINEPREFIX (default ~/.wine).
func StartSpawner(t testing.TB) string {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	token := hex.EncodeToString(key)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("spawner: %v", err)
	}
	s := &spawner{prefix: winePrefix(), token: []byte(token), conns: map[net.Conn]bool{}}
	go s.serve(l)
	t.Cleanup(func() {
		_ = l.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return token + "@" + l.Addr().String()
}

// winePrefix returns the Wine prefix that drive C: lives in.
func winePrefix() string {
	if p := os.Getenv("WINEPREFIX"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".wine")
}

type spawner struct {
	prefix string
	token  []byte // the hex text a client's first frame must hold

	wg     sync.WaitGroup // one per connection being served
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func (s *spawner) serve(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return // closed by cleanup
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.conns[conn] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}

// frameWriter serializes the frames that the output copiers and the handler write.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) frame(kind byte, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return writeFrame(f.w, kind, payload)
}

func (f *frameWriter) exit(code int, status string) {
	b, _ := json.Marshal(spawnExit{Code: code, Status: status})
	_ = f.frame(frameExit, b)
}

// handle serves one connection: one program, or one lookup, for a client that holds the token.
func (s *spawner) handle(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := &frameWriter{w: conn}
	_ = conn.SetReadDeadline(time.Now().Add(requestTimeout))
	kind, payload, err := readFrameMax(r, maxTokenFrame)
	if err != nil || kind != frameAuth || subtle.ConstantTimeCompare(payload, s.token) != 1 {
		refuse(conn, r)
		return
	}
	kind, payload, err = readFrame(r)
	if err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var req spawnRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		w.exit(-1, fmt.Sprintf("bad request: %v", err))
		return
	}
	req = req.translate(s.prefix)
	switch kind {
	case frameWhich:
		if _, err := exec.LookPath(req.Path); err != nil {
			w.exit(-1, err.Error())
		} else {
			w.exit(0, "found")
		}
		return
	case frameRun:
	default:
		w.exit(-1, fmt.Sprintf("unexpected first frame %q", kind))
		return
	}

	cmd := exec.Command(req.Path, req.Args...)
	cmd.Dir = req.Dir
	cmd.Env = append(cmd.Environ(), req.Env...) // Environ: ours, with PWD following Dir
	newProcessGroup(cmd)
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	stderr, err3 := cmd.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		w.exit(-1, err.Error())
		return
	}
	if err := cmd.Start(); err != nil {
		w.exit(-1, err.Error())
		return
	}
	if err := w.frame(frameStarted, nil); err != nil {
		_ = signalGroup(cmd.Process, sigKill)
	}
	exited := make(chan struct{})
	go control(r, cmd.Process, stdin, exited)
	var copiers sync.WaitGroup
	for kind, from := range map[byte]io.Reader{frameStdout: stdout, frameStderr: stderr} {
		copiers.Go(func() {
			buf := make([]byte, 32*1024)
			for {
				n, err := from.Read(buf)
				if n > 0 {
					_ = w.frame(kind, buf[:n]) // a lost client stops the program through control
				}
				if err != nil {
					return
				}
			}
		})
	}
	copiers.Wait() // Wait closes the pipes: read them to the end first
	err = cmd.Wait()
	close(exited)
	var ee *exec.ExitError
	switch {
	case err == nil:
		w.exit(0, cmd.ProcessState.String())
	case errors.As(err, &ee):
		w.exit(ee.ExitCode(), ee.ProcessState.String())
	default:
		w.exit(-1, err.Error())
	}
}

// refuse answers a client without the token; handle then closes the connection. Whatever the client
// sent after its first frame is discarded unparsed.
func refuse(conn net.Conn, r io.Reader) {
	if err := writeFrame(conn, frameDenied, []byte("wrong or missing token")); err != nil {
		return
	}
	// Closing a socket with unread input sends a reset, which can destroy the answer before the
	// client reads it: half-close, and discard the client's input until it closes too (bounded).
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxFrame))
}

// control applies the client's stdin and signal frames to the running program p until the
// connection ends; if that happens before p exits, it stops p's process group.
func control(r *bufio.Reader, p *os.Process, stdin io.WriteCloser, exited <-chan struct{}) {
	// Stdin is fed from a queue so that a program that does not read it cannot hold up a signal.
	in := make(chan []byte, 256)
	go func() {
		for b := range in {
			if b == nil {
				_ = stdin.Close()
			} else {
				_, _ = stdin.Write(b)
			}
		}
	}()
	defer close(in)
	for {
		kind, payload, err := readFrame(r)
		if err != nil {
			select {
			case <-exited:
				return
			default:
			}
			_ = signalGroup(p, sigTerm)
			select {
			case <-exited:
			case <-time.After(spawnerGrace):
				_ = signalGroup(p, sigKill)
			}
			return
		}
		switch kind {
		case frameStdin:
			in <- payload
		case frameCloseStdin:
			in <- nil
		case frameSignal:
			if len(payload) == 1 {
				_ = signalGroup(p, childSignal(payload[0]))
			}
		}
	}
}

// translate rewrites every Windows path in the request into the Linux path it names.
func (req spawnRequest) translate(prefix string) spawnRequest {
	out := spawnRequest{Path: hostPath(req.Path, prefix), Dir: hostPath(req.Dir, prefix)}
	for _, a := range req.Args {
		out.Args = append(out.Args, hostPath(a, prefix))
	}
	for _, kv := range req.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			kv = k + "=" + hostPath(v, prefix)
		}
		out.Env = append(out.Env, kv)
	}
	return out
}

// hostPath translates s, when all of it is an absolute Windows path as a program under Wine sees
// it, into the Linux path it names: Z:\x\y is /x/y (Wine maps Z: to /), C:\x is <prefix>/drive_c/x,
// and another drive D:\x is <prefix>/dosdevices/d:/x. Anything else (a relative path, a URL, a path
// inside a longer argument such as --flag=C:\x) is returned unchanged.
func hostPath(s, prefix string) string {
	if len(s) < 3 || s[1] != ':' || (s[2] != '\\' && s[2] != '/') {
		return s
	}
	d := s[0] | 0x20 // lower case
	if d < 'a' || d > 'z' {
		return s
	}
	rest := strings.ReplaceAll(s[3:], `\`, "/")
	switch d {
	case 'z':
		return path.Join("/", rest)
	case 'c':
		return path.Join(prefix, "drive_c", rest)
	default:
		return path.Join(prefix, "dosdevices", string(d)+":", rest)
	}
}
