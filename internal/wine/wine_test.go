//go:build linux

package wine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// bench is what `make windows` built, as `make test` hands it in.
type bench struct {
	dir    string // $AUTHKEEPER_WINDOWS_DIR: authkeeper.exe and test/PKG.test.exe
	prefix string // $AUTHKEEPER_WINEPREFIX: a Wine prefix with the ProcessPrng stand-in in system32
}

// newBench returns the artefacts of `make windows` once it has checked they and wine are there.
func newBench(t *testing.T) bench {
	t.Helper()
	b := bench{dir: os.Getenv("AUTHKEEPER_WINDOWS_DIR"), prefix: os.Getenv("AUTHKEEPER_WINEPREFIX")}
	if b.dir == "" || b.prefix == "" {
		missing(t, "AUTHKEEPER_WINDOWS_DIR and AUTHKEEPER_WINEPREFIX are not set (`make test` builds them with `make windows` and sets both)")
	}
	// The Makefile writes the stamp once wineboot has finished and before it copies the DLL.
	for _, f := range []string{filepath.Join(b.prefix, ".authkeeper-ready"), filepath.Join(b.prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")} {
		if _, err := os.Stat(f); err != nil {
			missing(t, "the Wine prefix is not ready (run `make windows`): %v", err)
		}
	}
	testbed.Need(t, "wine", "wineserver")
	return b
}

// missing reports an absent prerequisite: fatal under CI, a skip that says why elsewhere (as
// internal/testbed does).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("prerequisite missing: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// artefact returns the path of a file `make windows` built, or reports it missing.
func (b bench) artefact(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(b.dir, rel)
	if _, err := os.Stat(p); err != nil {
		missing(t, "%s was not built (run `make windows`): %v", rel, err)
	}
	return p
}

// env is the environment of a program run under Wine: this one's, in the test prefix, without what
// would reach outside the test. DISPLAY goes (Wine would open its windows on the developer's desktop)
// unless extra sets it; the XDG directories go, because authkeeper honours XDG_STATE_HOME and
// XDG_RUNTIME_DIR on every platform and would share the Linux engine's; so do the Linux paths of the
// Linux-side binaries.
func (b bench) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "DISPLAY", k == "WAYLAND_DISPLAY", strings.HasPrefix(k, "WINE"), strings.HasPrefix(k, "XDG_"),
			k == "AUTHKEEPER_BIN", k == "AUTHKEEPER_HEADLESS_DIR":
			continue
		}
		env = append(env, kv)
	}
	// No Gecko or Mono install prompts, and no Wine debug chatter on stderr.
	env = append(env, "WINEPREFIX="+b.prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
	return append(env, extra...)
}

// windowsPath is the Wine path of a Linux path: drive Z: is the Linux root.
func windowsPath(p string) string {
	return `Z:` + strings.ReplaceAll(p, "/", `\`)
}

// restartWine ends the prefix's wineserver and every Wine program still running in it, and waits
// until they are gone. A wineserver outlives its last program by a few seconds, and with it the
// desktop (explorer.exe) of the display the first program had: a program started meanwhile on another
// display would join that desktop, and if it had none (an earlier test runs without DISPLAY) every
// window it creates fails ("Resource data not found").
func (b bench) restartWine(t *testing.T) {
	t.Helper()
	for _, arg := range []string{"-k", "-w"} {
		cmd := exec.Command("wineserver", arg)
		cmd.Env = b.env()
		// -k fails when no wineserver runs, which is what it is for.
		if out, err := cmd.CombinedOutput(); err != nil && arg == "-w" {
			t.Fatalf("wineserver -w: %v\n%s", err, out)
		}
	}
}

// wineCommand returns the command that runs the Windows program exe (a Linux path) under Wine.
func (b bench) wineCommand(exe string, args ...string) *exec.Cmd {
	cmd := exec.Command("wine", append([]string{exe}, args...)...)
	cmd.Env = b.env()
	return cmd
}

// appCommand returns the command that runs authkeeper.exe under Wine with args and its own %APPDATA%
// (the Linux directory appData), where it keeps its config, credentials file, proxy key and audit log.
// Wine sets APPDATA from the prefix's user profile whatever the Linux environment says, so cmd.exe
// sets it: `cmd /c set APPDATA=…&& authkeeper.exe ARGS`. Each argument reaches cmd.exe unquoted
// (Wine quotes only arguments with spaces, and cmd.exe would not understand its \" escapes), so one
// with a space or a character cmd.exe interprets fails the test.
func (b bench) appCommand(t *testing.T, appData string, extra []string, args ...string) *exec.Cmd {
	t.Helper()
	return b.exeCommand(t, filepath.Join(b.dir, "authkeeper.exe"), appData, extra, args...)
}

// exeCommand is appCommand for the Windows program exe (a Linux path).
func (b bench) exeCommand(t *testing.T, exe, appData string, extra []string, args ...string) *exec.Cmd {
	t.Helper()
	line := []string{"cmd", "/c", "set", "APPDATA=" + windowsPath(appData) + "&&", windowsPath(exe)}
	for _, a := range append([]string{appData, exe}, args...) {
		if strings.ContainsAny(a, " \t\"&|<>^%()") {
			t.Fatalf("argument %q cannot pass through cmd.exe unquoted", a)
		}
	}
	cmd := exec.Command("wine", append(line, args...)...)
	cmd.Env = b.env(extra...)
	return cmd
}
