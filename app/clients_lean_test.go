package app

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// fakeSource is a stand-in for a build of authkeeper where only its build information (the headless
// tag) and its answer to `version` matter: it prints "authkeeper V" for `version` (V set at link time;
// "fail" exits 3 instead) and exits 3 for anything else.
const fakeSource = `package main

import (
	"fmt"
	"os"
)

var v string

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" && v != "fail" {
		fmt.Println("authkeeper " + v)
		return
	}
	os.Exit(3)
}
`

// fakeBuilds builds fakeSource once per test for each named variant — "same" (this Version),
// "older" (0.0.1), "fail" — as a headless build, and "tray" (this Version, no headless tag), and
// returns their paths by name.
func fakeBuilds(t *testing.T) map[string]string {
	t.Helper()
	testbed.Need(t, "go")
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte(fakeSource), 0o644); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, b := range map[string]struct {
		v        string
		headless bool
	}{"same": {Version, true}, "older": {"0.0.1", true}, "fail": {"fail", true}, "tray": {Version, false}} {
		args := []string{"build", "-o", filepath.Join(dir, name), "-ldflags", "-X 'main.v=" + b.v + "'"}
		if b.headless {
			args = append(args, "-tags", "headless")
		}
		cmd := exec.Command("go", append(args, src)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, b)
		}
		out[name] = filepath.Join(dir, name)
	}
	return out
}

// TestLeanExeChoosesTheHeadlessBuildOfThisVersion pins which program the tray build's `authkeeper
// clients` writes into stdio entries, given what lies next to it: the headless build under its first
// name, else its second, when its build information has the headless tag and it prints this version;
// never one of another version, one that fails or one that is not a headless build (each with a
// warning naming it); the binary itself otherwise. The siblings are small Go programs built for the
// test (fakeSource): the choice reads nothing else of them. The real builds: the .deb test
// (packagedBridgeEntry in the root package) and the Windows zip's under Wine.
func TestLeanExeChoosesTheHeadlessBuildOfThisVersion(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fakes are built without .exe")
	}
	fakes := fakeBuilds(t)
	names := clients.LeanNames(runtime.GOOS, runtime.GOARCH)
	for _, tc := range []struct {
		name     string
		siblings map[string]string // name → fake variant; "dir" makes a directory
		want     string            // "" for the binary itself
		warn     []string
	}{
		{name: "none", want: ""},
		{name: "headless", siblings: map[string]string{names[0]: "same"}, want: names[0]},
		{name: "make headless's name", siblings: map[string]string{names[1]: "same"}, want: names[1]},
		{name: "both: the first name", siblings: map[string]string{names[0]: "same", names[1]: "same"}, want: names[0]},
		{name: "older first, current second", siblings: map[string]string{names[0]: "older", names[1]: "same"}, want: names[1],
			warn: []string{names[0], `is "authkeeper 0.0.1", but this is "authkeeper ` + Version + `"`}},
		{name: "older only", siblings: map[string]string{names[0]: "older"}, want: "",
			warn: []string{names[0], "agents' stdio entries run"}},
		{name: "fails", siblings: map[string]string{names[1]: "fail"}, want: "", warn: []string{names[1], "`version` failed"}},
		{name: "not a headless build", siblings: map[string]string{names[0]: "tray"}, want: "",
			warn: []string{names[0], "is not authkeeper's headless build"}},
		{name: "a directory of that name", siblings: map[string]string{names[0]: "dir"}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "authkeeper")
			testbed.CopyFile(t, fakes["tray"], exe)
			for n, variant := range tc.siblings {
				if variant == "dir" {
					if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
						t.Fatal(err)
					}
					continue
				}
				testbed.CopyFile(t, fakes[variant], filepath.Join(dir, n))
			}
			var stderr bytes.Buffer
			got := leanExe(t.Context(), env{stdout: &bytes.Buffer{}, stderr: &stderr, getenv: os.Getenv}, exe)
			want := exe
			if tc.want != "" {
				want = filepath.Join(dir, tc.want)
			}
			if got != want {
				t.Errorf("leanExe = %s, want %s", got, want)
			}
			for _, w := range tc.warn {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			if tc.warn == nil && stderr.Len() > 0 {
				t.Errorf("unexpected warning: %s", stderr.String())
			}
		})
	}
}

// TestLeanExeKeepsTheHeadlessBuildItself: run from the headless build under make headless's name,
// with nothing under the first name, the entries name it, without running it or warning.
func TestLeanExeKeepsTheHeadlessBuildItself(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, clients.LeanNames(runtime.GOOS, runtime.GOARCH)[1])
	if err := os.WriteFile(exe, []byte("not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if got := leanExe(t.Context(), env{stdout: &bytes.Buffer{}, stderr: &stderr, getenv: os.Getenv}, exe); got != exe || stderr.Len() > 0 {
		t.Errorf("leanExe = %s (stderr %q), want itself, %s, without a warning", got, stderr.String(), exe)
	}
}

// TestHeadlessBuildReadsTheTagNotTheName: the build information decides, whatever the file is called;
// a file that is not a Go program, or a test binary, is not a headless build.
func TestHeadlessBuildReadsTheTagNotTheName(t *testing.T) {
	fakes := fakeBuilds(t)
	script := filepath.Join(t.TempDir(), "authkeeper-headless")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho authkeeper\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{fakes["same"]: true, fakes["older"]: true, fakes["tray"]: false, script: false, self: false} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if got := headlessBuild(path); got != want {
				t.Errorf("headlessBuild(%s) = %v, want %v", path, got, want)
			}
		})
	}
}
