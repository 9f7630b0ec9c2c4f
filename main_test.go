package main

import (
	"bufio"
	"debug/buildinfo"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeRunWithoutDisplayStartsHeadlessEngine runs the binary exactly as `make run` does on a machine
// with no display: it must say so in one line, print its addresses, answer `status`, and exit cleanly
// on SIGTERM.
func TestMakeRunWithoutDisplayStartsHeadlessEngine(t *testing.T) {
	bin := e2e.MustBinary(t)
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "akrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + rt,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "AUTHKEEPER_PROXY_ADDR=127.0.0.1:0"}

	cmd := exec.Command(bin)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var got []string
	timeout := time.After(20 * time.Second)
	for len(got) == 0 || !strings.Contains(got[len(got)-1], "config:") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("authkeeper exited early; output:\n%s", strings.Join(got, "\n"))
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("no addresses within 20s; output:\n%s", strings.Join(got, "\n"))
		}
	}
	out := strings.Join(got, "\n")
	for _, want := range []string{
		"no display found, running the headless engine (authkeeper serve)",
		"engine running (headless)",
		"proxy:   http://127.0.0.1:",
		"control: " + filepath.Join(rt, "authkeeper", "control.sock"),
		"config:  " + filepath.Join(home, ".config", "authkeeper", "config.json"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	status := exec.Command(bin, "status")
	status.Env = env
	if b, err := status.CombinedOutput(); err != nil || !strings.Contains(string(b), "running for") {
		t.Errorf("authkeeper status: %v\n%s", err, b)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// TestCLocaleStartsQuietly runs the real binary under the C.UTF-8 locale of Debian containers and CI
// runners: fyne's lang package reads the locale in its init, before main, and used to log "Error
// parsing user locale C" on every command (app/locale prevents it). A command writes nothing to
// stderr but its own messages.
func TestCLocaleStartsQuietly(t *testing.T) {
	bin := e2e.MustBinary(t)
	home := t.TempDir()
	for _, tc := range []struct{ name, env string }{
		{"LANG", "LANG=C.UTF-8"},
		{"LC_ALL", "LC_ALL=C.utf8"},
		{"POSIX", "LANG=POSIX.UTF-8"},
		{"plain C", "LANG=C"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, args := range [][]string{{"version"}, {"help"}} {
				cmd := exec.Command(bin, args...)
				cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), tc.env}
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("authkeeper %s: %v; stderr:\n%s", args[0], err, stderr.String())
				}
				if stderr.Len() != 0 {
					t.Errorf("authkeeper %s under %s wrote to stderr:\n%s", args[0], tc.env, stderr.String())
				}
				if !strings.Contains(string(out), "authkeeper") {
					t.Errorf("authkeeper %s printed %q", args[0], out)
				}
			}
		})
	}
}

// TestPlainGoBuildReportsItsRevision builds the program as a user does, with a plain `go build` in
// this checkout (no -ldflags), and checks that `authkeeper version` names the checkout's commit,
// with -dirty exactly when the tree had changes, instead of "dev". Whether it had is what the Go
// toolchain saw as it built (vcs.modified in the binary's build info), not a `git status` taken
// before or after: other work in the same checkout during the build would make that a guess.
func TestPlainGoBuildReportsItsRevision(t *testing.T) {
	t.Parallel()
	head := func() string {
		out, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("git rev-parse HEAD: %v", err)
			}
			t.Skipf("not a git checkout, or no git: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	before := head()
	bin := filepath.Join(t.TempDir(), "authkeeper")
	// -s -w only spares the linker the symbol table and DWARF (half the build's time); like a plain
	// build, it sets no version. GOFLAGS from the environment replaces the go env file's: a machine
	// whose file says -buildvcs=false (some CI images do) would stamp no commit, and a user's `go
	// build` does by default.
	build := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=auto")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	after := head()
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != before && rev != after { // a commit made during the build moves HEAD
		t.Fatalf("the build recorded revision %q, want HEAD (%s, or %s after the build)", rev, before, after)
	}
	want := "authkeeper " + rev[:12]
	switch modified {
	case "true":
		want += "-dirty"
	case "false":
	default:
		t.Fatalf("the build recorded vcs.modified=%q, want true or false", modified)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("authkeeper version after a plain go build = %q, want %q", got, want)
	}
}
