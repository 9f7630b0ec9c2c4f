package app

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/app/clients"
)

// leanAskTimeout bounds `version` run on a headless build found next to this binary.
const leanAskTimeout = 5 * time.Second

// leanExe returns the program agents' stdio entries run (`authkeeper bridge NAME`) when the tray
// build exe writes them: the headless build installed next to exe under one of clients.LeanNames,
// when its build information says it is one and it prints this binary's version; else exe itself.
// Both answer the same commands; a bridge reaches its first answer sooner from the headless build (no
// shared libraries, no GUI packages to initialize), and an agent starts one per session. A file of
// that name that is not a headless build, fails, or prints another version (left from another
// install or build) is passed over, with a warning on e.stderr naming it. Only the tray build calls
// it: a headless build is already lean, and one installed by hand as authkeeper may lie next to the
// download it was copied from.
func leanExe(ctx context.Context, e env, exe string) string {
	for _, name := range clients.LeanNames(runtime.GOOS, runtime.GOARCH) {
		p := filepath.Join(filepath.Dir(exe), name)
		if p == exe {
			return exe
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if !headlessBuild(p) {
			fmt.Fprintf(e.stderr, "warning: %s is not authkeeper's headless build; agents' stdio entries run %s instead\n", p, exe)
			continue
		}
		got, err := versionOf(ctx, p)
		if err != nil {
			fmt.Fprintf(e.stderr, "warning: %s: %v; agents' stdio entries run %s instead\n", p, err, exe)
			continue
		}
		if want := "authkeeper " + Version; got != want {
			fmt.Fprintf(e.stderr, "warning: %s is %q, but this is %q (another install or build); agents' stdio entries run %s instead\n",
				p, got, want, exe)
			continue
		}
		return p
	}
	return exe
}

// headlessBuild reports whether the program at path is a headless build (`go build -tags headless`),
// from its build information, without running it. A test binary is never one: running it with
// `version` would run its tests.
func headlessBuild(path string) bool {
	info, err := buildinfo.ReadFile(path)
	if err != nil || strings.HasSuffix(info.Path, ".test") {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), "headless") {
			return true
		}
	}
	return false
}

// versionOf runs `path version` and returns its first line.
func versionOf(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, leanAskTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "version")
	noConsole(cmd)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("`version` failed: %w", err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}
