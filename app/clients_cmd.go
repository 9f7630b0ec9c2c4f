package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
)

// proxyAskTimeout bounds the question to the running engine: an owner that does not answer within it
// is treated as absent (the settings' address is used, and the output says so).
const proxyAskTimeout = 3 * time.Second

// cmdClients runs `authkeeper clients [NAME...] [--write CLIENT [--dry-run]]`: it prints, for every
// supported client, the config that points it at the proxy for the named (default: all) servers, or
// merges that config into one client's file. The proxy address is the running engine's; with none
// running, the settings'. Run from the tray build, stdio entries run the headless build installed
// next to it, when there is one (leanExe). It never starts an engine.
func cmdClients(ctx context.Context, args []string, e env) error {
	fs := newFlags("clients", e)
	write := fs.String("write", "", "merge the config into this client's file: "+clientIDs())
	dry := fs.Bool("dry-run", false, "with --write: print the file it would write and change nothing")
	addr := fs.String("proxy-addr", e.getenv("AUTHKEEPER_PROXY_ADDR"),
		"the proxy's address to write (default: the running authkeeper's; with none running, the settings' proxy_port, else "+engine.DefaultProxyAddr+")")
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	var target clients.Target
	if *write != "" {
		var ok bool
		if target, ok = clients.TargetByID(*write); !ok {
			return fmt.Errorf("clients: unknown client %q (one of %s)", *write, clientIDs())
		}
	} else if *dry {
		return errors.New("clients: --dry-run goes with --write CLIENT")
	}
	setup, names, err := loadClientSetup(e, *addr, names)
	if err != nil {
		return err
	}
	tray := setup.Exe
	if e.ui != nil { // the tray build
		setup.Exe = leanExe(ctx, e, tray)
	}
	where, err := useRunningProxy(ctx, e, &setup, *addr != "")
	if err != nil {
		return err
	}
	dirs, err := clients.DirsFrom(e.getenv)
	if err != nil {
		return err
	}
	if *write == "" {
		fmt.Fprintf(e.stdout, "# Proxy: %s (%s)\n", setup.ProxyURL, where)
		if setup.Exe != tray {
			fmt.Fprintf(e.stdout, "# Stdio entries run %s, the headless build installed with this one: a bridge starts sooner from it.\n", setup.Exe)
		}
		fmt.Fprintln(e.stdout)
		return printClients(e, setup, dirs, names)
	}
	return writeClient(e, target, setup, dirs, names, where, *dry)
}

// writeClient merges the entries into target's file: nothing is written (and no backup of the key
// left behind) when the file already holds entries of the same meaning, however it is formatted.
func writeClient(e env, target clients.Target, setup clients.Setup, dirs clients.Dirs, names []string, where string, dry bool) error {
	path := target.Path(dirs)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clients: %w", err)
	}
	merged, err := target.Merge(old, setup, names)
	if errors.Is(err, clients.ErrUnmergeable) {
		snip, _ := target.Snippet(setup, names) // Merge rendered the same entries
		return fmt.Errorf("clients: %s %v, so authkeeper leaves it alone; add this to it by hand:\n%s", path, err, snip)
	}
	if err != nil {
		return fmt.Errorf("clients: %w", err)
	}
	if old != nil && target.Unchanged(old, merged, names) {
		fmt.Fprintf(e.stdout, "%s (%s) already points %s at %s: unchanged, nothing written.\n",
			target.Title, path, strings.Join(names, ", "), setup.ProxyURL)
		return nil
	}
	dropped := target.Replaced(old, setup, names)
	if dry {
		fmt.Fprintf(e.stdout, "Would write %s (proxy %s, %s):\n%s", path, setup.ProxyURL, where, merged)
		return nil
	}
	backup, err := clients.WriteFileAtomic(path, merged, time.Now())
	if err != nil {
		return fmt.Errorf("clients: write %s: %w", path, err)
	}
	fmt.Fprintf(e.stdout, "Added %s to %s (%s), proxy %s (%s).\n", strings.Join(names, ", "), target.Title, path, setup.ProxyURL, where)
	if backup != "" {
		fmt.Fprintf(e.stdout, "The previous file is kept at %s.\n", backup)
	}
	// The user's other keys of a replaced entry are kept; those of the transport it replaces are not.
	for _, n := range names {
		if keys := dropped[n]; len(keys) > 0 {
			fmt.Fprintf(e.stdout, "The old entry %q's %s belonged to how %s reached it before; the new entry does not use them.\n",
				n, strings.Join(keys, ", "), target.Title)
		}
	}
	// What the client will actually use: an entry of the same name elsewhere in the file can win
	// (opencode's mcp.servers).
	for _, f := range target.AuditData(path, merged, setup) {
		for _, n := range names {
			if f.Server == n && f.Problem != "" {
				fmt.Fprintf(e.stderr, "warning: %s's entry %q %s; fix it by hand.\n", target.Title, n, f.Problem)
			}
		}
	}
	if target.Note != "" {
		fmt.Fprintf(e.stdout, "%s\n", target.Note)
	}
	fmt.Fprintf(e.stdout, "Restart %s (or reload its MCP servers) to use them.\n", target.Title)
	return nil
}

func clientIDs() string {
	ids := make([]string, len(clients.Targets))
	for i, t := range clients.Targets {
		ids[i] = t.ID
	}
	return strings.Join(ids, ", ")
}

// loadClientSetup reads the proxy key and the configured servers (no owner needed) and checks names.
// The proxy address is addr, else the settings' (see useRunningProxy).
func loadClientSetup(e env, addr string, names []string) (clients.Setup, []string, error) {
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return clients.Setup{}, nil, err
	}
	if err := paths.Ensure(); err != nil {
		return clients.Setup{}, nil, err
	}
	key, err := engine.LoadProxyKey(paths.ConfigDir)
	if err != nil {
		return clients.Setup{}, nil, err
	}
	// Read, not keychain.ConfigFile.Load: a read-only command must not move a corrupt file aside.
	s := keychain.DefaultSettings()
	if data, err := os.ReadFile(paths.ConfigFile()); err == nil {
		if err := json.Unmarshal(data, &s); err != nil {
			return clients.Setup{}, nil, fmt.Errorf("clients: %s: %w", paths.ConfigFile(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return clients.Setup{}, nil, err
	}
	configured := map[string]bool{}
	for _, srv := range s.Servers {
		configured[srv.Name] = true
	}
	if len(names) == 0 {
		for _, srv := range s.Servers {
			names = append(names, srv.Name)
		}
		if len(names) == 0 {
			return clients.Setup{}, nil, errors.New("clients: no servers configured yet; add one with `authkeeper add URL`")
		}
	}
	for _, n := range names {
		if !configured[n] {
			return clients.Setup{}, nil, fmt.Errorf("clients: %q: %w (see `authkeeper status`)", n, engine.ErrUnknownServer)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return clients.Setup{}, nil, err
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	if addr == "" {
		addr = engine.ProxyAddrFor(s.Prefs)
	}
	return clients.Setup{ProxyURL: "http://" + addr, Key: key, Exe: exe}, names, nil
}

// useRunningProxy points setup at the proxy of the engine that runs now, unless the address was given
// (then it only warns when the running one differs); with none running setup keeps the settings'
// address. It returns in words where the address came from.
func useRunningProxy(ctx context.Context, e env, setup *clients.Setup, given bool) (string, error) {
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return "", err
	}
	running, err := runningProxy(ctx, paths)
	if err != nil {
		return "", err
	}
	switch {
	case given:
		if running.URL != "" && !running.Temporary && running.URL != setup.ProxyURL {
			fmt.Fprintf(e.stderr, "warning: the running authkeeper's proxy is at %s, not %s\n", running.URL, setup.ProxyURL)
		}
		return "from --proxy-addr or AUTHKEEPER_PROXY_ADDR", nil
	case running.Temporary:
		return fmt.Sprintf("a temporary authkeeper (a bridge or command) runs on a port of its own, %s, until the app or `authkeeper serve` starts; "+
			"the settings' stable address is written: start the app or `authkeeper serve` to serve it", running.URL), nil
	case running.URL != "":
		setup.ProxyURL = running.URL
		if running.Key != "" {
			setup.Key = running.Key
		}
		return "the running authkeeper's", nil
	}
	return "no authkeeper is running: the settings' proxy_port, else the default; start it on that address", nil
}

// runningOwner is the engine that owns the credentials now, as `clients` needs it.
type runningOwner struct {
	control.ProxyInfo
	// Temporary is set for a command that owns until the app starts (a bridge, the headers helper, a
	// busy run): its proxy listens on a port of its own for that while, never what agents should keep.
	Temporary bool
}

// runningProxy asks the engine that owns the credentials whether it keeps the stable port (Health)
// and where its proxy listens. No answer (none runs, or it does not answer in time) is a zero
// runningOwner; a control socket that is not the user's own is an error, as in `authkeeper status`.
func runningProxy(ctx context.Context, paths engine.Paths) (runningOwner, error) {
	ctx, cancel := context.WithTimeout(ctx, proxyAskTimeout)
	defer cancel()
	r := control.NewRemote(engine.OwnerSocket(paths))
	h, err := r.Health(ctx)
	if errors.Is(err, control.ErrNotYours) {
		return runningOwner{}, fmt.Errorf("clients: %w", err)
	}
	if err != nil {
		return runningOwner{}, nil
	}
	if h.Temporary {
		// Its URL only to name it; the key is the same per-install key the settings' setup holds.
		return runningOwner{ProxyInfo: control.ProxyInfo{URL: h.ProxyURL}, Temporary: true}, nil
	}
	info, err := r.Proxy(ctx)
	if errors.Is(err, control.ErrNotYours) {
		return runningOwner{}, fmt.Errorf("clients: %w", err)
	}
	if err != nil {
		return runningOwner{}, nil
	}
	return runningOwner{ProxyInfo: info}, nil
}

// printClients prints every client's snippet and where it goes.
func printClients(e env, setup clients.Setup, dirs clients.Dirs, names []string) error {
	for i, t := range clients.Targets {
		snip, err := t.Snippet(setup, names)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		fmt.Fprintf(e.stdout, "# %s: %s  (authkeeper clients --write %s)\n", t.Title, t.Path(dirs), t.ID)
		if t.ID == "claude-code" {
			for _, n := range names {
				fmt.Fprintf(e.stdout, "#   or: claude mcp add --scope user --transport http %s %s --header \"%s: %s\"\n",
					n, setup.Endpoint(n), proxy.ProxyKeyHeader, setup.Key)
			}
		}
		if t.Note != "" {
			fmt.Fprintf(e.stdout, "#   note: %s\n", t.Note)
		}
		fmt.Fprint(e.stdout, snip)
	}
	return nil
}
