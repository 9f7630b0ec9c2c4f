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
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
)

// Version is the program's version. `make build` sets it at link time (-ldflags "-X
// .../app.Version=…", from `git describe`); left empty, it is derived at start from what the Go
// toolchain recorded in the binary (see buildVersion), so that a plain `go build` reports the commit
// it was built from and `go install …@v1.2.3` its release, never an unhelpful "dev".
var Version string

func init() {
	if Version == "" {
		info, ok := debug.ReadBuildInfo()
		Version = buildVersion(info, ok)
	}
}

// buildVersion is the version a binary built without -ldflags reports, from its build info (ok is
// ReadBuildInfo's): a release version the module was fetched at (`go install …@v1.2.3`, or `go build`
// on a commit tagged v1.2.3 with Go 1.24 or later); else the commit of the checkout it was built
// from, as its first 12 hex digits (what Go's pseudo-versions use) with "-dirty" when the tree had
// changes, the way `git describe --always --dirty` writes it; else Go's pseudo-version; else "dev" (a
// build with -buildvcs=false, or outside a checkout).
func buildVersion(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "dev"
	}
	v := info.Main.Version
	if v != "" && v != "(devel)" && !pseudoVersion.MatchString(v) {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		return rev
	}
	if v != "" && v != "(devel)" {
		return v
	}
	return "dev"
}

// pseudoVersion matches Go's pseudo-versions (vX.Y.Z-[pre.]0.yyyymmddhhmmss-abcdefabcdef, with an
// optional +dirty or +incompatible), which name a commit, not a release: the commit is shown instead.
var pseudoVersion = regexp.MustCompile(`[.-]\d{14}-[0-9a-f]{12}(\+[0-9A-Za-z.-]+)?$`)

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
// the user quits the tray). Headless, it logs every event on stderr (see eventLog.follow).
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
		OAuth: oauth.Config{ClientMetadataURL: o.clientMetadataURL}, OpenFleet: fleetOpener(e, o.fleet)})
	if err != nil {
		return err
	}
	// Headless, serve's stderr is its event log, and what serve itself says there is a line of it too,
	// so that a journal or a log collector parses every line (the banner and the shutdown notice go to
	// stdout). With the tray it says it in plain words; notifications tell the rest.
	var evlog *eventLog
	if ui == nil {
		evlog = newEventLog(eng, e.stderr, !journalStderr(e.getenv, e.stderr))
	}
	report := func(level slog.Level, event, message, plain string) {
		if evlog != nil {
			evlog.notice(level, event, message)
			return
		}
		fmt.Fprintln(e.stderr, "authkeeper:", plain)
	}
	err = eng.Start(ctx)
	if errors.Is(err, engine.ErrNotOwner) {
		var tookOver bool
		tookOver, err = takeOver(ctx, paths, eng, err)
		if tookOver {
			const msg = "took over the credentials from a command (a bridge or the CLI) that was running before the app"
			report(slog.LevelInfo, eventTookOver, msg, msg)
		}
	}
	if err != nil {
		if evlog != nil { // the reason as a log line too; the exit status says it failed
			evlog.notice(slog.LevelError, eventStartFailed, err.Error())
			return exitCode(1)
		}
		return err
	}
	var stopLog func() // the headless engine's event log; the tray has notifications instead
	defer func() {
		eng.Close()
		if stopLog != nil {
			stopLog() // after Close: what closing reports is logged too
		}
	}()
	mode := "headless"
	if ui != nil {
		mode = "with tray"
	}
	if w := eng.Warning(); w != "" {
		report(slog.LevelWarn, eventStartWarning, w, "warning: "+w)
	}
	stopHook, err := startHook(ctx, eng, o.fleet.instance, e, report)
	if err != nil {
		report(slog.LevelError, eventStartFailed, err.Error(), err.Error())
		return exitCode(1)
	}
	defer stopHook()
	fmt.Fprintf(e.stdout, "authkeeper %s: engine running (%s)\n", Version, mode)
	fmt.Fprintf(e.stdout, "  proxy:   %s/mcp/<server>\n", eng.ProxyURL())
	fmt.Fprintf(e.stdout, "  control: %s\n", eng.ControlAddr())
	fmt.Fprintf(e.stdout, "  config:  %s\n", eng.ConfigFile())
	if ui != nil {
		return ui(ctx, eng)
	}
	stopLog = evlog.follow()
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
// keep them from it. Another app or `serve` is never taken over. It reports true when eng started
// after a temporary owner was asked to hand over (not merely after the lock was busy a moment).
func takeOver(ctx context.Context, paths engine.Paths, eng *engine.Engine, notOwner error) (bool, error) {
	deadline := time.Now().Add(takeOverWait)
	var askedAt time.Time
	var refused error // the last refusal of a hand-over, if any
	asked := false    // a temporary owner was asked to hand over (else the lock was only busy a moment)
	for {
		if time.Since(askedAt) >= time.Second {
			// Ask whoever owns now: the first owner may not have let go yet, or another command took the
			// lock in the moment it was free.
			askedAt = time.Now()
			r := control.NewRemote(engine.OwnerSocket(paths))
			if h, err := r.Health(ctx); err == nil {
				if !h.Temporary {
					return false, fmt.Errorf("another authkeeper is already running (see `authkeeper status`): %w", notOwner)
				}
				refused, asked = r.Handover(ctx), true
			}
		}
		err := eng.Start(ctx)
		if err == nil {
			return asked, nil
		}
		if !errors.Is(err, engine.ErrNotOwner) {
			return false, fmt.Errorf("take over from the authkeeper command that owns the credentials: %w", err)
		}
		if !time.Now().Before(deadline) {
			if refused != nil {
				err = refused
			}
			return false, fmt.Errorf("take over from the authkeeper command that owns the credentials: %w", err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond): // the lock is another process's
		}
	}
}
