// Package app is authkeeper's command line and wiring: Run parses the command, starts the engine
// (app/engine) with the proxy (app/proxy) and the control API (app/control) as its front ends, or
// reaches the running owner through the control API. Nothing here knows about a GUI toolkit: the tray
// is passed in as a UI by main.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
)

// Version is the release version, set at build time with -ldflags "-X .../app.Version=…".
var Version = "dev"

// UI runs the desktop front end over a started engine and blocks until the user quits or ctx ends.
// It must be called on the main goroutine (GUI toolkits need the main thread).
type UI func(ctx context.Context, e *engine.Engine) error

// env is what a command may touch of the outside world; tests substitute it.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader // nil: none (add --token-stdin then fails)
	getenv         func(string) string
	ui             UI
}

// Run executes the command line args (args[0] is the program name) and returns the exit code.
// With no command it starts the tray when a display is available and the headless engine otherwise.
func Run(ctx context.Context, args []string, ui UI) int {
	attachParentConsole()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv, ui: ui})
}

func run(ctx context.Context, args []string, e env) int {
	cmd, rest := "", []string(nil)
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
	}
	return dispatch(ctx, cmd, rest, e)
}

// hasDisplay reports whether a desktop session is available for the tray.
func hasDisplay(getenv func(string) string) bool {
	if runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "openbsd" {
		return true
	}
	return getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
}

func cmdDefault(ctx context.Context, args []string, e env) error {
	// Flags first: `authkeeper tray --help` must not show the running app's window.
	if err := parseServeFlags("tray", args, e, &serveOpts{}); err != nil {
		return err
	}
	// Single instance: a second launch asks the running app to show its status window, then exits.
	// An owner a command started meanwhile (a bridge, the headers helper) is taken over instead.
	if paths, err := engine.DefaultPaths(e.getenv); err == nil {
		r := control.NewRemote(engine.OwnerSocket(paths))
		if h, err := r.Health(ctx); err == nil && !h.Temporary {
			if shown, err := r.Show(ctx); err == nil {
				if shown {
					fmt.Fprintln(e.stdout, "authkeeper is already running; showed its status window")
				} else {
					fmt.Fprintln(e.stdout, "authkeeper is already running headless; see `authkeeper status`")
				}
				return nil
			}
		}
	}
	switch {
	case e.ui == nil:
		fmt.Fprintln(e.stdout, "authkeeper: this build has no tray (headless), running the engine (authkeeper serve)")
		return cmdServe(ctx, args, e, nil)
	case !hasDisplay(e.getenv):
		fmt.Fprintln(e.stdout, "authkeeper: no display found, running the headless engine (authkeeper serve)")
		return cmdServe(ctx, args, e, nil)
	}
	return cmdServe(ctx, args, e, e.ui)
}

// cmdServe starts the engine, prints where it listens, and serves until ctx ends (or, with a UI, until
// the user quits the tray).
func cmdServe(ctx context.Context, args []string, e env, ui UI) error {
	var o serveOpts
	if err := parseServeFlags("serve", args, e, &o); err != nil {
		return err
	}
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return err
	}
	eng, err := newEngine(engine.Config{Paths: paths, ProxyAddr: o.proxyAddr, Version: Version, StoreKind: o.store,
		OAuth: oauth.Config{ClientMetadataURL: o.clientMetadataURL}})
	if err != nil {
		return err
	}
	err = eng.Start(ctx)
	if errors.Is(err, engine.ErrNotOwner) {
		err = takeOver(ctx, e, paths, eng, err)
	}
	if err != nil {
		return err
	}
	defer eng.Close()
	mode := "headless"
	if ui != nil {
		mode = "with tray"
	}
	if w := eng.Warning(); w != "" {
		fmt.Fprintln(e.stderr, "authkeeper: warning:", w)
	}
	fmt.Fprintf(e.stdout, "authkeeper %s: engine running (%s)\n", Version, mode)
	fmt.Fprintf(e.stdout, "  proxy:   %s/mcp/<server>\n", eng.ProxyURL())
	fmt.Fprintf(e.stdout, "  control: %s\n", eng.ControlAddr())
	fmt.Fprintf(e.stdout, "  config:  %s\n", eng.ConfigFile())
	if ui != nil {
		return ui(ctx, eng)
	}
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "authkeeper: shutting down")
	return nil
}

// takeOverWait bounds the wait for a temporary owner to let go: it first finishes the requests in
// flight (5 s) and a refresh in flight (up to its 30 s timeout), and saves.
const takeOverWait = 40 * time.Second

// takeOver starts eng in place of the temporary owner that holds the lock (notOwner is Start's error):
// it asks that owner to hand over, then takes the lock as soon as it is free. The app and `serve` own
// the stable proxy port and the tray; a bridge that became the owner because it started first must not
// keep them from it. Another app or `serve` is never taken over.
func takeOver(ctx context.Context, e env, paths engine.Paths, eng *engine.Engine, notOwner error) error {
	deadline := time.Now().Add(takeOverWait)
	var asked time.Time
	var refused error // the last refusal of a hand-over, if any
	for {
		if time.Since(asked) >= time.Second {
			// Ask whoever owns now: the first owner may not have let go yet, or another command took the
			// lock in the moment it was free.
			asked = time.Now()
			r := control.NewRemote(engine.OwnerSocket(paths))
			if h, err := r.Health(ctx); err == nil {
				if !h.Temporary {
					return fmt.Errorf("another authkeeper is already running (see `authkeeper status`): %w", notOwner)
				}
				refused = r.Handover(ctx)
			}
		}
		err := eng.Start(ctx)
		if err == nil {
			fmt.Fprintln(e.stderr, "authkeeper: took over the credentials from a command (a bridge or the CLI) that was running before the app")
			return nil
		}
		if !errors.Is(err, engine.ErrNotOwner) {
			return fmt.Errorf("take over from the authkeeper command that owns the credentials: %w", err)
		}
		if !time.Now().Before(deadline) {
			if refused != nil {
				err = refused
			}
			return fmt.Errorf("take over from the authkeeper command that owns the credentials: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // the lock is another process's
		}
	}
}
