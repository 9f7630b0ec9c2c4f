package app

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/app/engine"
)

// The fifth check of `authkeeper doctor`: every entry of the agents' config files that points at
// authkeeper (the proxy, the bridge, the headers helper) agrees with the running proxy — its address
// and key — and names a server authkeeper has. clients.Audit reads the files; the key is compared
// there in constant time and never printed.

// checkClients audits the agents' config files against the proxy the owner runs (else the stable
// address) and the configured servers.
func (d *doctor) checkClients(ctx context.Context) []checkResult {
	setup := clients.Setup{ProxyURL: d.ownerProxyURL(), Exe: d.exe}
	if setup.ProxyURL == "" {
		if _, port, err := net.SplitHostPort(d.proxyAddr); err == nil && port != "0" {
			setup.ProxyURL = "http://" + d.proxyAddr
		}
	}
	keyPath := filepath.Join(d.paths.ConfigDir, "proxy.key")
	// LoadProxyKey creates a key when there is none: only an existing one is read, as a diagnosis
	// changes nothing. Without one, entries are checked for everything but their key.
	if _, err := os.Stat(keyPath); err == nil {
		key, err := engine.LoadProxyKey(d.paths.ConfigDir)
		if err != nil {
			return []checkResult{{Check: "proxy key", Status: checkFail, Detail: err.Error()}}
		}
		setup.Key = key
	}
	configured := map[string]bool{}
	if d.snapshot != nil {
		for _, st := range d.snapshot.Servers {
			configured[st.Name] = true
		}
	} else {
		for _, s := range d.settings.Servers {
			configured[s.Name] = true
		}
	}
	findings := d.audit(d.dirs, setup)
	if len(findings) == 0 {
		return []checkResult{{Check: "clients", Status: checkWarn, Detail: "no agent's config file points at authkeeper",
			Fix: "`authkeeper clients` prints each agent's entry; `authkeeper clients --write CLIENT` adds it"}}
	}
	slow := d.slowBridge(ctx)
	out := make([]checkResult, 0, len(findings))
	for _, f := range findings {
		r := d.finding(f, configured)
		if r.Status == checkOK && f.Via == clients.ViaBridge && slow != "" && sameFile(f.Command, slow) {
			r.Status = checkWarn
			r.Detail = f.Server + " in " + d.tilde(f.Path) + " points at authkeeper (authkeeper bridge), but runs the tray binary " + slow +
				": a bridge starts sooner from the headless build installed next to it, " + d.lean
			r.Fix = "authkeeper clients --write " + f.Client + " " + f.Server
			if f.Server != f.Proxied { // clients would add an entry named after the server instead
				r.Fix = "change the entry's command to " + d.lean
			}
		}
		out = append(out, r)
	}
	return out
}

// slowBridge returns the tray binary that bridge entries should no longer run: the binary named
// authkeeper next to the headless build `authkeeper clients` would write now (leanExe of this
// program; d.lean), when that build is not the tray binary itself. "" when there is no headless build
// next to this program.
func (d *doctor) slowBridge(ctx context.Context) string {
	if d.exe == "" {
		return ""
	}
	if d.lean == "" {
		d.lean = leanExe(ctx, env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}, d.exe)
	}
	tray := filepath.Join(filepath.Dir(d.lean), "authkeeper")
	if runtime.GOOS == "windows" {
		tray += ".exe"
	}
	if sameFile(d.lean, tray) {
		return ""
	}
	if _, err := os.Stat(tray); err != nil {
		return ""
	}
	return tray
}

// sameFile reports whether the paths name one file (the one, resolved, that a config names may be a
// symlink to).
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// finding is the line of one Audit finding.
func (d *doctor) finding(f clients.Finding, configured map[string]bool) checkResult {
	r := checkResult{Check: "client " + f.Client}
	path := d.tilde(f.Path)
	switch {
	case f.Server == "" && f.Problem != "": // the file's own problem
		r.Status, r.Detail = checkFail, path+" "+f.Problem
		r.Fix = "repair the file by hand (authkeeper does not rewrite a file it cannot read)"
	case f.Problem != "":
		r.Status, r.Detail = checkFail, f.Server+" in "+path+" "+f.Problem
		r.Fix = "authkeeper clients --write " + f.Client
	case f.Proxied != "" && !configured[f.Proxied]:
		r.Status = checkFail
		r.Detail = f.Server + " in " + path + " reaches authkeeper's server " + f.Proxied + ", which authkeeper does not have"
		r.Fix = "`authkeeper add URL --name " + f.Proxied + "`, or remove the entry"
	default:
		r.Status, r.Detail = checkOK, f.Server+" in "+path+" points at authkeeper"+via(f.Via)
	}
	return r
}

func via(v clients.Via) string {
	switch v {
	case clients.ViaProxy:
		return "'s proxy"
	case clients.ViaBridge:
		return " (authkeeper bridge)"
	case clients.ViaHeadersHelper:
		return " (authkeeper headers)"
	}
	return ""
}

// tilde shortens a path under the home directory to ~/….
func (d *doctor) tilde(path string) string {
	if d.dirs.Home != "" {
		if rel, err := filepath.Rel(d.dirs.Home, path); err == nil && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel) {
			return filepath.Join("~", rel)
		}
	}
	return path
}
