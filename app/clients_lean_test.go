package app

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestLeanExeChoosesTheHeadlessBuildOfThisVersion pins which program `authkeeper clients` writes into
// stdio entries, given what lies next to the binary: the headless build under its first name, else its
// second, when it prints this version; never one of another version or one that fails (with a warning
// naming it); the binary itself otherwise. The siblings here are shell scripts that answer `version`:
// the choice reads nothing else of them (the real builds: TestPackagedBridgeEntryRunsTheHeadlessBuild).
func TestLeanExeChoosesTheHeadlessBuildOfThisVersion(t *testing.T) {
	testbed.Need(t, "sh")
	if runtime.GOOS == "windows" {
		t.Skip("shell-script siblings")
	}
	names := clients.LeanNames(runtime.GOOS, runtime.GOARCH)
	same := "#!/bin/sh\necho 'authkeeper " + Version + "'\n"
	older := "#!/bin/sh\necho 'authkeeper 0.0.1'\n"
	broken := "#!/bin/sh\nexit 3\n"
	for _, tc := range []struct {
		name     string
		siblings map[string]string // name → script
		want     string            // "" for the binary itself
		warn     []string
	}{
		{name: "none", want: ""},
		{name: "headless", siblings: map[string]string{names[0]: same}, want: names[0]},
		{name: "make headless's name", siblings: map[string]string{names[1]: same}, want: names[1]},
		{name: "both: the first name", siblings: map[string]string{names[0]: same, names[1]: same}, want: names[0]},
		{name: "older first, current second", siblings: map[string]string{names[0]: older, names[1]: same}, want: names[1],
			warn: []string{names[0], `is "authkeeper 0.0.1", not "authkeeper ` + Version + `"`}},
		{name: "older only", siblings: map[string]string{names[0]: older}, want: "",
			warn: []string{names[0], "agents' stdio entries run"}},
		{name: "fails", siblings: map[string]string{names[1]: broken}, want: "", warn: []string{names[1], "`version` failed"}},
		{name: "a directory of that name", siblings: map[string]string{names[0]: ""}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "authkeeper")
			if err := os.WriteFile(exe, []byte(same), 0o755); err != nil {
				t.Fatal(err)
			}
			for n, script := range tc.siblings {
				var err error
				if script == "" {
					err = os.Mkdir(filepath.Join(dir, n), 0o755)
				} else {
					err = os.WriteFile(filepath.Join(dir, n), []byte(script), 0o755)
				}
				if err != nil {
					t.Fatal(err)
				}
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
// the entries name it, not a sibling.
func TestLeanExeKeepsTheHeadlessBuildItself(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, clients.LeanNames(runtime.GOOS, runtime.GOARCH)[1])
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := leanExe(t.Context(), env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: os.Getenv}, exe); got != exe {
		t.Errorf("leanExe = %s, want itself, %s", got, exe)
	}
}
