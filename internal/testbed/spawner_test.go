//go:build linux

package testbed

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSpawnerRunsProgramWithEnvStdinSeparateStderrAndExitCode runs a shell through the spawner and
// checks everything a caller of StartProcess relies on: the added environment arrives, stdout lines
// reach WaitLine, stderr reaches Output only, stdin is delivered, and the exit code comes back.
func TestSpawnerRunsProgramWithEnvStdinSeparateStderrAndExitCode(t *testing.T) {
	addr := StartSpawner(t)
	cmd := exec.Command("sh", "-c", `echo "READY $TB_SPAWN_VAR"; echo ERR on stderr >&2; read line; echo "GOT $line"; exit 3`)
	cmd.Env = append(cmd.Environ(), "TB_SPAWN_VAR=added")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startRemote(t, "sh", cmd, addr)
	if got := p.WaitLine(t, "READY ", 10*time.Second); got != "added" {
		t.Errorf("READY line = %q, want the added variable's value %q", got, "added")
	}
	if _, err := stdin.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if got := p.WaitLine(t, "GOT ", 10*time.Second); got != "hello" {
		t.Errorf("GOT line = %q, want what was written to stdin", got)
	}
	<-p.Done()
	var exit *RemoteExitError
	if err := p.ExitErr(); !errors.As(err, &exit) || exit.Code != 3 || exit.Status != "exit status 3" {
		t.Errorf("ExitErr = %#v, want a RemoteExitError with code 3", p.ExitErr())
	}
	if !strings.Contains(p.Output(), "ERR on stderr") {
		t.Errorf("Output lacks stderr:\n%s", p.Output())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.HasPrefix(l, "ERR") {
			t.Errorf("stderr line %q is among the stdout lines WaitLine reads", l)
		}
	}
}

// TestSpawnerClosesStdinAtEOFAndReportsSuccess feeds cat a reader: cat exits only if the spawner
// closes its stdin when the reader ends.
func TestSpawnerClosesStdinAtEOFAndReportsSuccess(t *testing.T) {
	addr := StartSpawner(t)
	cmd := exec.Command("cat")
	cmd.Stdin = strings.NewReader("one\ntwo\n")
	p := startRemote(t, "cat", cmd, addr)
	p.WaitLine(t, "two", 10*time.Second)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cat did not exit: its stdin was not closed")
	}
	if err := p.ExitErr(); err != nil {
		t.Errorf("ExitErr = %v, want nil for exit code 0", err)
	}
	if got, want := p.Output(), "one\ntwo\n"; got != want {
		t.Errorf("Output = %q, want %q", got, want)
	}
}

// TestSpawnerStopTerminatesTheProcessGroup stops a shell and the sleep it started through
// Process.Stop, which travels as a signal frame.
func TestSpawnerStopTerminatesTheProcessGroup(t *testing.T) {
	addr := StartSpawner(t)
	p := startRemote(t, "sh", exec.Command("sh", "-c", `sleep 600 & echo "PID $!"; wait`), addr)
	sleeper := waitPID(t, p)
	_ = p.Stop()
	var exit *RemoteExitError
	if err := p.ExitErr(); !errors.As(err, &exit) || exit.Status != "signal: terminated" {
		t.Errorf("ExitErr = %v, want signal: terminated", p.ExitErr())
	}
	waitGone(t, sleeper)
}

// TestSpawnerKillsTheGroupWhenTheConnectionCloses drops the connection under a group that ignores
// SIGTERM: the spawner must escalate to SIGKILL after its grace period.
func TestSpawnerKillsTheGroupWhenTheConnectionCloses(t *testing.T) {
	addr := StartSpawner(t)
	p := startRemote(t, "sh", exec.Command("sh", "-c", `trap "" TERM; sleep 600 & echo "PID $!"; wait`), addr)
	sleeper := waitPID(t, p)
	start := time.Now()
	_ = p.ctl.(*remoteChild).conn.Close()
	waitGone(t, sleeper)
	if d := time.Since(start); d < spawnerGrace-500*time.Millisecond {
		t.Errorf("the group was gone after %v: SIGTERM should have been ignored until SIGKILL at %v", d, spawnerGrace)
	}
}

// TestSpawnerFailsToStartUnknownProgramAndAnswersWhich covers the lookup request and a failed start.
func TestSpawnerFailsToStartUnknownProgramAndAnswersWhich(t *testing.T) {
	addr := StartSpawner(t)
	if err := spawnerWhich(addr, "sh"); err != nil {
		t.Errorf("which sh: %v", err)
	}
	if err := spawnerWhich(addr, "testbed-no-such-program"); err == nil {
		t.Error("which testbed-no-such-program: found")
	}
}

// TestSpawnerRunsNothingForAClientWithoutTheToken asks the spawner to create a file with the token it
// handed out, then with wrong or missing tokens: only the first runs, every other client is refused
// with an errSpawnerToken whose text holds no token, and a client that skips the client code and
// writes frames itself gets only a refusal.
func TestSpawnerRunsNothingForAClientWithoutTheToken(t *testing.T) {
	dir := t.TempDir()
	var refused []string // files that must never appear
	// Registered before StartSpawner, so it runs after the spawner's cleanup has waited for every
	// connection it served: a command run late would have finished by then.
	t.Cleanup(func() {
		for _, f := range refused {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v: a client without the token ran a command", f, err)
			}
		}
	})
	value := StartSpawner(t)
	token, addr, ok := strings.Cut(value, "@")
	if !ok || len(token) != 64 || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("StartSpawner = %q, want <64 hex digits>@127.0.0.1:PORT", value)
	}
	touch := func(f string) spawnRequest { return spawnRequest{Path: "touch", Args: []string{f}} }

	with := filepath.Join(dir, "with-token")
	if c, err := dialSpawner(value); err != nil {
		t.Fatal(err)
	} else if err := c.run(touch(with)); err != nil {
		t.Fatalf("with the token: %v", err)
	} else {
		_, _ = io.Copy(io.Discard, c) // until the exit frame, after which the spawner closes
		c.Close()
	}
	if _, err := os.Stat(with); err != nil {
		t.Fatalf("the command did not run with the token: %v", err)
	}

	other := "0" + token[1:]
	if token[0] == '0' {
		other = "1" + token[1:]
	}
	for _, tc := range []struct{ name, value string }{
		{"another token", other + "@" + addr},
		{"the token cut short", token[:32] + "@" + addr},
		{"an empty token", "@" + addr},
		{"no token", addr},
		{"the token alone", token},
		{"token and address swapped", addr + "@" + token},
		{"the token and no address", token + "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			refused = append(refused, f)
			c, err := dialSpawner(tc.value)
			if err == nil {
				err = c.run(touch(f))
				c.Close()
			}
			checkRefused(t, "run", err, token)
			checkRefused(t, "which", spawnerWhich(tc.value, "sh"), token)
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v: the command ran", f, err)
			}
		})
	}

	run, err := json.Marshal(touch(filepath.Join(dir, "raw")))
	if err != nil {
		t.Fatal(err)
	}
	refused = append(refused, filepath.Join(dir, "raw"))
	for _, tc := range []struct {
		name   string
		frames [][]byte // each a kind byte, then the payload
	}{
		{"a request first", [][]byte{append([]byte{frameRun}, run...)}},
		{"an empty token frame", [][]byte{{frameAuth}, append([]byte{frameRun}, run...)}},
		{"the token in a request frame", [][]byte{append([]byte{frameRun}, token...), append([]byte{frameRun}, run...)}},
		{"an oversized token frame", [][]byte{append([]byte{frameAuth}, strings.Repeat(token, 5)...), append([]byte{frameRun}, run...)}},
	} {
		t.Run("raw "+tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			for _, f := range tc.frames {
				if err := writeFrame(conn, f[0], f[1:]); err != nil {
					t.Fatal(err)
				}
			}
			r := bufio.NewReader(conn)
			if kind, _, err := readFrame(r); err != nil || kind != frameDenied {
				t.Fatalf("answer %q, %v; want the refusal %q", kind, err, frameDenied)
			}
			if kind, _, err := readFrame(r); !errors.Is(err, io.EOF) {
				t.Errorf("after the refusal: frame %q, %v; want the connection closed", kind, err)
			}
		})
	}
}

// checkRefused fails t unless err is the spawner's refusal, worded without the token.
func checkRefused(t *testing.T, what string, err error, token string) {
	t.Helper()
	if !errors.Is(err, errSpawnerToken) {
		t.Errorf("%s: %v, want errSpawnerToken", what, err)
	} else if strings.Contains(err.Error(), token) {
		t.Errorf("%s: the error holds the token: %v", what, err)
	} else {
		t.Logf("%s: %v", what, err)
	}
}

// TestStartProcessGoesToTheSpawnerOnlyForProgramsItCannotRunHere pins the routing rule.
func TestStartProcessGoesToTheSpawnerOnlyForProgramsItCannotRunHere(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  *exec.Cmd
		addr string
		want bool
	}{
		{"no spawner", exec.Command("testbed-no-such-program"), "", false},
		{"found on PATH here", exec.Command("sh"), "127.0.0.1:1", false},
		{"not on PATH here", exec.Command("testbed-no-such-program"), "127.0.0.1:1", true},
		{"no such path here", exec.Command("/testbed/no/such/program"), "127.0.0.1:1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runsRemotely(tc.cmd, tc.addr); got != tc.want {
				t.Errorf("runsRemotely = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAddedEnvSendsOnlyWhatTheTestAdded pins which variables travel with a request.
func TestAddedEnvSendsOnlyWhatTheTestAdded(t *testing.T) {
	t.Setenv("TB_SET_BY_TEST", "1")
	got := addedEnv(append(os.Environ(), "TB_ADDED=2"))
	want := []string{"TB_SET_BY_TEST=1", "TB_ADDED=2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("addedEnv = %q, want %q", got, want)
	}
}

func TestHostPathTranslatesWindowsPathsOnly(t *testing.T) {
	const prefix = "/home/u/.wine"
	for _, tc := range []struct{ in, want string }{
		{`Z:\work\main\oauth`, "/work/main/oauth"},
		{`z:/work/x`, "/work/x"},
		{`Z:\`, "/"},
		{`C:\users\u\Temp\a.pem`, "/home/u/.wine/drive_c/users/u/Temp/a.pem"},
		{`D:\data`, "/home/u/.wine/dosdevices/d:/data"},
		{`node`, "node"},
		{`relative\path`, `relative\path`},
		{`http://127.0.0.1:80/x`, "http://127.0.0.1:80/x"},
		{`--config=Z:\x`, `--config=Z:\x`},
		{`1:\x`, `1:\x`},
		{``, ``},
	} {
		if got := hostPath(tc.in, prefix); got != tc.want {
			t.Errorf("hostPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	req := spawnRequest{Path: `Z:\usr\bin\node`, Args: []string{`Z:\a\as.mjs`, "-v"}, Dir: `C:\tmp`,
		Env: []string{`NODE_EXTRA_CA_CERTS=C:\t\ca.pem`, "PLAIN=1", "ODD"}}.translate(prefix)
	want := spawnRequest{Path: "/usr/bin/node", Args: []string{"/a/as.mjs", "-v"}, Dir: "/home/u/.wine/drive_c/tmp",
		Env: []string{"NODE_EXTRA_CA_CERTS=/home/u/.wine/drive_c/t/ca.pem", "PLAIN=1", "ODD"}}
	if strings.Join(append(append([]string{req.Path, req.Dir}, req.Args...), req.Env...), "|") !=
		strings.Join(append(append([]string{want.Path, want.Dir}, want.Args...), want.Env...), "|") {
		t.Errorf("translate = %+v, want %+v", req, want)
	}
}

func TestRemoveTreeRemovesNestedEntriesButNotSymlinkTargets(t *testing.T) {
	outside := t.TempDir()
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "tree")
	for _, d := range []string{"a/b/c", "d"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"f", "a/f", "a/b/c/f"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "d", "link")); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(root); err != nil {
		t.Fatalf("removeTree: %v", err)
	}
	if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tree still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("symlink target removed: %v", err)
	}
	if err := removeTree(root); err != nil {
		t.Errorf("removeTree of a missing tree: %v", err)
	}
}

// waitPID reads the PID line the test's shell prints.
func waitPID(t *testing.T, p *Process) int {
	t.Helper()
	pid, err := strconv.Atoi(p.WaitLine(t, "PID ", 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits until pid has ended: it no longer exists, or is a zombie (a killed grandchild is
// reparented to PID 1, which may be slow to reap it).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	running := func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		_, after, _ := strings.Cut(string(stat), ") ")
		return !strings.HasPrefix(after, "Z")
	}
	for deadline := time.Now().Add(10 * time.Second); running(); {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's state
	}
}
