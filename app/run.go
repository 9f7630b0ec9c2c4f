// Package app is authkeeper's command line and wiring: Run parses the command, starts the engine
// (app/engine) with the proxy (app/proxy) and the control API (app/control) as its front ends, or
// reaches the running owner through the control API. Nothing here knows about a GUI toolkit: the tray
// is passed in as a UI by main.
package app

import (
	"context"
	"errors"
	"flag"
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
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv, ui: ui})
}

func run(ctx context.Context, args []string, e env) int {
	cmd, rest := "", []string(nil)
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
	}
	var err error
	switch cmd {
	case "", "tray":
		err = cmdDefault(ctx, rest, e)
	case "serve":
		err = cmdServe(ctx, rest, e, nil)
	case "status":
		err = cmdStatus(ctx, rest, e)
	case "add":
		err = cmdAdd(ctx, rest, e)
	case "login":
		err = cmdLogin(ctx, rest, e)
	case "logout":
		err = cmdSimple(ctx, "logout", rest, e, func(r *control.Remote, n string) error { return r.Logout(ctx, n) }, "Signed out of %s")
	case "remove":
		err = cmdSimple(ctx, "remove", rest, e, func(r *control.Remote, n string) error { return r.Remove(ctx, n) }, "Removed %s")
	case "refresh":
		err = cmdSimple(ctx, "refresh", rest, e, func(r *control.Remote, n string) error { return r.Refresh(ctx, n) }, "Refreshed %s")
	case "busy":
		err = cmdBusy(ctx, rest, e)
	case "bridge":
		err = cmdBridge(ctx, rest, e, os.Stdin)
	case "headers":
		err = cmdHeaders(ctx, rest, e)
	case "clients":
		err = cmdClients(ctx, rest, e)
	case "version", "--version":
		fmt.Fprintln(e.stdout, "authkeeper", Version)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
	default:
		fmt.Fprintf(e.stderr, "authkeeper: unknown command %q\n%s", cmd, usage)
		return 2
	}
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.Is(err, flag.ErrHelp):
		return 2
	}
	fmt.Fprintln(e.stderr, "authkeeper:", err)
	return 1
}

const usage = `usage: authkeeper [command]

  (none)                     the tray app (the headless engine when there is no display)
  serve [--proxy-addr A] [--store keychain|file] [--client-metadata-url URL]
                             the engine headless: MCP proxy + control API
  status [--json]            each server's state, token lifetime and warnings
  add URL [--name N] [--device] [--client-id ID [--redirect-port N]]
          [--scope S]... [--param k=v]... [--assume-pkce]
                             sign in to an MCP server and keep its token fresh
                             (--scope: extra scopes, e.g. api://APP/.default; --param: extra
                             authorization/token parameters, e.g. audience=…; --assume-pkce: sign in
                             although the authorization server does not advertise PKCE)
  add URL --client-id ID --client-credentials [--client-key-file PEM [--client-key-id KID]]
                             a machine identity (client_credentials; no browser): the secret from
                             $AUTHKEEPER_CLIENT_SECRET, or a private key (private_key_jwt)
  add URL --token-stdin [--token-expires 2026-12-31]
                             a static token or API key, read from stdin or $AUTHKEEPER_TOKEN
  add URL --cross-app --client-id ID --idp-token-endpoint URL --idp-client-id ID [--id-token-stdin]
                             enterprise-managed authorization through your identity provider (cross-app
                             access; no browser): your ID token from stdin or $AUTHKEEPER_IDP_ID_TOKEN
  login NAME [--device | --id-token-stdin]
                             sign in to a server again (a cross-app access server: with a new ID token)
  logout NAME                revoke and forget a server's tokens
  remove NAME                revoke its tokens and remove the server
  refresh NAME               refresh a server's token now
  busy start --id X [--ttl 30m] | busy end --id X | busy run -- CMD | busy list
                             hold refreshes while an agent turn runs
  bridge NAME                MCP over stdin/stdout for stdio-only clients (Claude Desktop)
  headers [NAME]             print {"Authorization": …} for Claude Code's headersHelper
                             (exit 2: sign-in needed; NAME defaults to $CLAUDE_CODE_MCP_SERVER_NAME)
  clients [NAME...] [--write CLIENT [--dry-run]]
                             print or write the MCP config of Claude Code, Claude Desktop,
                             VS Code, GitHub Copilot CLI and Cursor
  version                    print the version

Environment: AUTHKEEPER_PROXY_ADDR (serve's --proxy-addr), AUTHKEEPER_STORE (--store),
AUTHKEEPER_CLIENT_SECRET (add: the client id's secret), AUTHKEEPER_TOKEN (add: a static token),
AUTHKEEPER_IDP_ID_TOKEN (add --cross-app, login: your ID token from the identity provider),
AUTHKEEPER_IDP_CLIENT_SECRET (add --cross-app: authkeeper's client secret at the identity provider).
Secrets are never taken from the command line.
`

// hasDisplay reports whether a desktop session is available for the tray.
func hasDisplay(getenv func(string) string) bool {
	if runtime.GOOS != "linux" && runtime.GOOS != "freebsd" && runtime.GOOS != "openbsd" {
		return true
	}
	return getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
}

func cmdDefault(ctx context.Context, args []string, e env) error {
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
	fs := newFlags("serve", e)
	proxyAddr := fs.String("proxy-addr", e.getenv("AUTHKEEPER_PROXY_ADDR"), "loopback host:port for the MCP proxy (default "+engine.DefaultProxyAddr+")")
	store := fs.String("store", e.getenv("AUTHKEEPER_STORE"), "credential store: keychain (default) or file (plain text, 0600)")
	cimd := fs.String("client-metadata-url", "", "the https URL where authkeeper's client metadata document is hosted "+
		"(default: the settings' prefs.client_metadata_url)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return err
	}
	eng, err := newEngine(engine.Config{Paths: paths, ProxyAddr: *proxyAddr, Version: Version, StoreKind: *store,
		OAuth: oauth.Config{ClientMetadataURL: *cimd}})
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
