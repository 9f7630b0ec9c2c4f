package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// headlessTargets are the six targets `make headless` builds.
var headlessTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// headlessDir returns the directory of the headless binaries and their targets:
// $AUTHKEEPER_HEADLESS_DIR with the targets $AUTHKEEPER_HEADLESS_TARGETS names (what `make test`
// built: one architecture per OS), or all six when it names none; else one built here for this
// machine's target only.
func headlessDir(t *testing.T) (dir string, targets []string) {
	t.Helper()
	if d := os.Getenv("AUTHKEEPER_HEADLESS_DIR"); d != "" {
		if ts := strings.Fields(os.Getenv("AUTHKEEPER_HEADLESS_TARGETS")); len(ts) > 0 {
			return d, ts
		}
		return d, headlessTargets
	}
	dir = t.TempDir()
	target := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("go", "build", "-tags", "headless", "-o", filepath.Join(dir, headlessName(target)), ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags headless: %v\n%s", err, out)
	}
	return dir, []string{target}
}

func headlessName(target string) string {
	os, arch, _ := strings.Cut(target, "/")
	name := "authkeeper-" + os + "-" + arch
	if os == "windows" {
		name += ".exe"
	}
	return name
}

// TestHeadlessBuildsLinkNoGUIToolkitAndNoCgo reads each headless binary's build information: built for
// its target with cgo off and the headless tag, and no GUI module (fyne, GLFW, OpenGL, systray) linked.
func TestHeadlessBuildsLinkNoGUIToolkitAndNoCgo(t *testing.T) {
	dir, targets := headlessDir(t)
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			info, err := buildinfo.ReadFile(filepath.Join(dir, headlessName(target)))
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range info.Settings {
				settings[s.Key] = s.Value
			}
			goos, goarch, _ := strings.Cut(target, "/")
			if settings["GOOS"] != goos || settings["GOARCH"] != goarch || settings["CGO_ENABLED"] != "0" ||
				!strings.Contains(settings["-tags"], "headless") {
				t.Errorf("build settings GOOS=%s GOARCH=%s CGO_ENABLED=%s -tags=%q, want %s with cgo off and the headless tag",
					settings["GOOS"], settings["GOARCH"], settings["CGO_ENABLED"], settings["-tags"], target)
			}
			for _, m := range info.Deps {
				for _, gui := range []string{"fyne.io/", "github.com/go-gl/", "github.com/fyne-io/"} {
					if strings.HasPrefix(m.Path, gui) {
						t.Errorf("links %s %s", m.Path, m.Version)
					}
				}
			}
		})
	}
}

// TestHeadlessBuildServesWithADisplayAndAnswersTheCLI runs this machine's headless binary: it prints its
// version, and its default command serves the engine even when a display is set, saying why.
func TestHeadlessBuildServesWithADisplayAndAnswersTheCLI(t *testing.T) {
	dir, _ := headlessDir(t)
	bin := filepath.Join(dir, headlessName(runtime.GOOS+"/"+runtime.GOARCH))
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no headless binary for this machine: %v", err)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "authkeeper ") {
		t.Fatalf("version: %q, %v", out, err)
	}
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "akhl") // short: it holds the control socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	cmd := exec.Command(bin)
	cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_STATE_HOME=" + filepath.Join(home, ".state"),
		"XDG_RUNTIME_DIR=" + rt, "DISPLAY=:0", "AUTHKEEPER_PROXY_ADDR=127.0.0.1:0", "AUTHKEEPER_STORE=file", "PATH=" + os.Getenv("PATH")}
	var out testbed.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "config:"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no addresses within 20s; output:\n%s", out.String())
		}
	}
	if s := out.String(); !strings.Contains(s, "this build has no tray (headless), running the engine (authkeeper serve)") {
		t.Errorf("output:\n%s\nwant the headless-build notice", s)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGINT: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "Fyne") {
		t.Errorf("fyne output from a build without fyne:\n%s", out.String())
	}
}
