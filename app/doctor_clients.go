package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
	lean, tray := d.bridgeBinaries(ctx)
	out := make([]checkResult, 0, len(findings))
	for _, f := range findings {
		r := d.finding(f, configured)
		if r.Status == checkOK && f.Via == clients.ViaBridge {
			if detail, fix := d.bridgeAdvice(ctx, f, lean, tray); detail != "" {
				r.Status, r.Detail, r.Fix = checkWarn, detail, fix
			}
		}
		out = append(out, r)
	}
	return out
}

// bridgeBinaries returns the program `authkeeper clients` would write into a stdio entry now (lean:
// leanExe of the tray build, else this headless build itself) and the tray binary next to it that an
// older entry may still run (tray). tray is "" when there is none apart from lean, or when the
// authkeeper there is itself a headless build (installed by hand under that name).
func (d *doctor) bridgeBinaries(ctx context.Context) (lean, tray string) {
	if d.exe == "" {
		return "", ""
	}
	lean = d.exe
	if d.tray {
		lean = leanExe(ctx, env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}, d.exe)
	}
	tray = filepath.Join(filepath.Dir(lean), "authkeeper")
	if runtime.GOOS == "windows" {
		tray += ".exe"
	}
	if _, err := os.Stat(tray); err != nil || sameFile(lean, tray) || headlessBuild(tray) {
		return lean, ""
	}
	return lean, tray
}

// bridgeAdvice returns the warning for a bridge entry f that works but should run another program,
// and its fix; "" when there is none. Such an entry runs the tray binary while the headless build is
// installed next to it (a bridge starts sooner from that), or a headless build that is not this
// version. A bare command is looked up on PATH, as the agent would.
func (d *doctor) bridgeAdvice(ctx context.Context, f clients.Finding, lean, tray string) (detail, fix string) {
	if lean == "" { // this program's path is unknown: nothing to compare with or to suggest
		return "", ""
	}
	cmd := f.Command
	if !strings.ContainsAny(cmd, `/\`) {
		if p, err := exec.LookPath(cmd); err == nil {
			cmd = p
		}
	}
	at := f.Server + " in " + d.tilde(f.Path) + " points at authkeeper (authkeeper bridge), but runs "
	switch {
	case tray != "" && sameFile(cmd, tray):
		detail = at + "the tray binary " + tray + ": a bridge starts sooner from the headless build installed next to it, " + lean
	case !sameFile(cmd, d.exe) && headlessBuild(cmd):
		got, err := versionOf(ctx, cmd)
		if err == nil && got == "authkeeper "+d.version {
			return "", ""
		}
		if err != nil {
			got = err.Error()
		}
		detail = fmt.Sprintf("%s%s, which is %q, not authkeeper %s as this one", at, cmd, got, d.version)
	default:
		return "", ""
	}
	// clients --write writes the entry named after the server, and a bridge only for a stdio client.
	if t, ok := clients.TargetByID(f.Client); ok && t.WritesBridge() && f.Server == f.Proxied {
		return detail, "authkeeper clients --write " + f.Client + " " + f.Server
	}
	return detail, "change the entry's command to " + lean
}

// sameFile reports whether the paths name one file (a config may name a symlink to it).
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
