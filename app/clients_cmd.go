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
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
)

// cmdClients runs `authkeeper clients [NAME...] [--write CLIENT [--dry-run]]`: it prints, for every
// supported client, the config that points it at the proxy for the named (default: all) servers, or
// merges that config into one client's file. It needs no running owner.
func cmdClients(_ context.Context, args []string, e env) error {
	fs := newFlags("clients", e)
	write := fs.String("write", "", "merge the config into this client's file: "+clientIDs())
	dry := fs.Bool("dry-run", false, "with --write: print the file it would write and change nothing")
	addr := fs.String("proxy-addr", e.getenv("AUTHKEEPER_PROXY_ADDR"), "the proxy's stable address (default "+engine.DefaultProxyAddr+")")
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
	dirs, err := clients.DirsFrom(e.getenv)
	if err != nil {
		return err
	}
	if *write == "" {
		return printClients(e, setup, dirs, names)
	}
	path := target.Path(dirs)
	entries, err := target.Entries(setup, names)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clients: %w", err)
	}
	merged, err := clients.MergeServers(old, target.Section, entries)
	if err != nil {
		snip, _ := target.Snippet(setup, names) // Entries succeeded above, so this does too
		return fmt.Errorf("clients: %s is not plain JSON (%v; comments are not supported), so authkeeper leaves it alone; add this to it by hand:\n%s",
			path, err, snip)
	}
	if *dry {
		fmt.Fprintf(e.stdout, "Would write %s:\n%s", path, merged)
		return nil
	}
	backup, err := clients.WriteFileAtomic(path, merged, time.Now())
	if err != nil {
		return fmt.Errorf("clients: write %s: %w", path, err)
	}
	fmt.Fprintf(e.stdout, "Added %s to %s (%s).\n", strings.Join(names, ", "), target.Title, path)
	if backup != "" {
		fmt.Fprintf(e.stdout, "The previous file is kept at %s.\n", backup)
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
		fmt.Fprint(e.stdout, snip)
	}
	return nil
}
