package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/app/clients"
)

// leanAskTimeout bounds `version` run on a headless build found next to this binary.
const leanAskTimeout = 5 * time.Second

// leanExe returns the program agents' stdio entries run (`authkeeper bridge NAME`): the headless build
// installed next to exe under one of clients.LeanNames, when it is a regular file that prints this
// binary's version; else exe itself. Both answer the same commands; a bridge reaches its first answer
// sooner from the headless build (no shared libraries, no GUI packages to initialize), and an agent
// starts one per session. A file of that name that fails or prints another version (left from an
// older install) is passed over, with a warning on e.stderr naming it.
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
		got, err := versionOf(ctx, p)
		if err != nil {
			fmt.Fprintf(e.stderr, "warning: %s: %v; agents' stdio entries run %s instead\n", p, err, exe)
			continue
		}
		if want := "authkeeper " + Version; got != want {
			fmt.Fprintf(e.stderr, "warning: %s is %q, not %q (left from another install?); agents' stdio entries run %s instead\n",
				p, got, want, exe)
			continue
		}
		return p
	}
	return exe
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
