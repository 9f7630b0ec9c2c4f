package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/keychain"
)

// The first three checks of `authkeeper doctor`: the credential store, the owner, the proxy port.

// fixUnlock is the fix for a locked keychain, on every OS.
const fixUnlock = "unlock the login keyring (log in to the desktop again, or open Passwords and Keys / seahorse; " +
	"on macOS Keychain Access), or run authkeeper with --store file"

// checkStore checks the credential store serve would use: the OS keychain answers and is unlocked, or
// the file store's file is private to the user.
func (d *doctor) checkStore() checkResult {
	if d.storeKind == "file" {
		return d.checkFileStore()
	}
	if d.openFleet != nil {
		return d.checkFleetStore()
	}
	r := checkResult{Check: "keychain"}
	ks, err := d.keyring()
	if err != nil {
		r.Status, r.Detail = checkFail, err.Error()
		return r
	}
	// Locked first: reading an item of a locked gnome-keyring shows an unlock prompt, and a doctor
	// must not pop up a dialog (nor wait for one).
	if ks.Locked() {
		r.Status, r.Detail, r.Fix = checkFail, "the default keyring is locked, so authkeeper can neither read nor save tokens", fixUnlock
		return r
	}
	err = ks.Check()
	switch {
	case errors.Is(err, keychain.ErrLocked):
		r.Status, r.Detail, r.Fix = checkFail, err.Error(), fixUnlock
	case err != nil: // ErrUnavailable: its message names the cause and the fix
		r.Status, r.Detail, r.Fix = checkFail, err.Error(), "as the message says, or run authkeeper with --store file (tokens then sit unencrypted in a private file)"
	default:
		r.Status, r.Detail = checkOK, "the system keychain answers and is unlocked"
		if rr, ok := ks.(recordReader); ok {
			d.store = rr
		}
	}
	return r
}

// checkFleetStore checks a fleet's etcd store: a quorum of its members answers, the fleet key loads,
// and etcd's authentication (if any) lets this user in. It joins the fleet for the length of the run.
func (d *doctor) checkFleetStore() checkResult {
	r := checkResult{Check: "fleet store"}
	st, f, err := d.openFleet(d.storeKind)
	if err != nil {
		r.Status, r.Detail = checkFail, err.Error()
		r.Fix = "check the etcd:// URL (members, TLS files, user), that a quorum of the members runs, and the fleet key " +
			"(--fleet-key-file, $AUTHKEEPER_FLEET_KEY_FILE or $AUTHKEEPER_FLEET_KEY)"
		return r
	}
	d.closeFleet = f.Close
	d.store = st
	r.Status, r.Detail = checkOK, "the fleet's etcd answers and the fleet key is loaded"
	return r
}

// checkFileStore checks the file store chosen with --store file: credentials.json (if it exists yet)
// and its directory may be read by the user alone. It is a warning at best: the tokens are not encrypted.
func (d *doctor) checkFileStore() checkResult {
	r := checkResult{Check: "credential file"}
	dir := d.paths.ConfigDir
	path := filepath.Join(dir, "credentials.json")
	fi, err := os.Stat(dir)
	if err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		r.Status, r.Detail, r.Fix = checkFail, fmt.Sprintf("%s is open to others (mode %04o)", dir, fi.Mode().Perm()), "chmod 700 "+dir
		return r
	}
	if err == nil {
		// The directory exists and is private: opening the store creates and changes nothing.
		if fs, err := keychain.NewFileStore(keychain.FileConfig{Dir: dir}); err == nil {
			d.store = fs
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		r.Status, r.Detail = checkWarn, "--store file is chosen: tokens will be kept unencrypted in "+path+" (none saved yet)"
		return r
	}
	if err != nil {
		d.store = nil
		r.Status, r.Detail = checkFail, err.Error()
		return r
	}
	defer f.Close()
	if err := keychain.CheckPrivate(f); err != nil {
		d.store = nil
		// On Unix the mode and chmod fix it; on Windows the message names the file's owner or DACL.
		r.Status, r.Detail = checkFail, err.Error()
		if fi, serr := f.Stat(); serr == nil && runtime.GOOS != "windows" {
			r.Detail, r.Fix = fmt.Sprintf("%s may be read or written by others (mode %04o)", path, fi.Mode().Perm()), "chmod 600 "+path
		}
		return r
	}
	r.Status, r.Detail = checkWarn, "tokens are kept unencrypted in "+path+" (--store file), readable by you alone"
	return r
}

// checkOwner asks the control API who owns the credentials: the app or serve (ok), a command that
// started the engine for as long as it runs (warn), or nobody (FAIL: nothing refreshes, and the proxy
// the agents' configs name does not answer).
func (d *doctor) checkOwner(ctx context.Context) checkResult {
	r := checkResult{Check: "owner"}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	h, err := d.owner.Health(ctx)
	switch {
	case errors.Is(err, control.ErrNotYours):
		r.Status, r.Detail, r.Fix = checkFail, err.Error(), "restart your session; another user's program holds authkeeper's control address"
		return r
	case err != nil:
		r.Status, r.Detail = checkFail, "no authkeeper is running: nothing keeps the tokens fresh, and the proxy the agents use does not answer"
		r.Fix = "start it: `authkeeper` (the tray app) or `authkeeper serve` (headless)"
		return r
	}
	d.health = &h
	if s, err := d.owner.Status(ctx); err == nil {
		d.snapshot = &s
	}
	up := time.Duration(h.Uptime * float64(time.Second)).Round(time.Second)
	switch {
	case h.Temporary:
		r.Status = checkWarn
		r.Detail = fmt.Sprintf("authkeeper %s runs for a command (a bridge or the CLI) that took ownership, up %s: it stops when that command exits, and its proxy is on a temporary port", h.Version, up)
		r.Fix = "start the app (`authkeeper`) or `authkeeper serve`: it takes over"
	case h.Version != d.version:
		r.Status = checkWarn
		r.Detail = fmt.Sprintf("authkeeper %s runs (up %s), but this command is %s", h.Version, up, d.version)
		r.Fix = "quit it and start it again to run the installed version"
	default:
		r.Status, r.Detail = checkOK, fmt.Sprintf("authkeeper %s runs (up %s)", h.Version, up)
	}
	return r
}

// ownerProxyURL is the proxy URL of the owner that keeps the stable port (the app or serve), or "".
func (d *doctor) ownerProxyURL() string {
	if d.health == nil || d.health.Temporary {
		return ""
	}
	return d.health.ProxyURL
}

// checkProxyPort checks the proxy's stable address: held by the running app or serve (ok), free for
// it to take (ok), or held by another program (FAIL).
func (d *doctor) checkProxyPort(ctx context.Context) checkResult {
	r := checkResult{Check: "proxy port"}
	if u := d.ownerProxyURL(); u != "" {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			r.Status, r.Detail = checkFail, fmt.Sprintf("the running authkeeper reports the proxy URL %q", u)
			return r
		}
		if !sameAddr(pu.Host, d.proxyAddr) {
			r.Status = checkWarn
			r.Detail = fmt.Sprintf("the running authkeeper's proxy listens on %s, not on %s that agents' configs name by default", pu.Host, d.proxyAddr)
			r.Fix = "keep --proxy-addr the same at every start (or set proxy_port in the settings), then `authkeeper clients --write CLIENT`"
			return r
		}
		conn, err := (&net.Dialer{Timeout: doctorTimeout}).DialContext(ctx, "tcp", pu.Host)
		if err != nil {
			r.Status, r.Detail = checkFail, fmt.Sprintf("the running authkeeper's proxy on %s does not answer (%v)", pu.Host, plainNetErr(err))
			r.Fix = "quit authkeeper and start it again"
			return r
		}
		conn.Close()
		r.Status, r.Detail = checkOK, pu.Host+" is the running authkeeper's proxy"
		return r
	}
	if _, port, err := net.SplitHostPort(d.proxyAddr); err == nil && port == "0" {
		r.Status, r.Detail = checkOK, "a free port is chosen at every start ("+d.proxyAddr+")"
		return r
	}
	err := d.listen(d.proxyAddr)
	switch {
	case err == nil:
		r.Status, r.Detail = checkOK, d.proxyAddr+" is free for authkeeper's proxy when it starts"
	case errors.Is(err, syscall.EADDRINUSE):
		r.Status = checkFail
		r.Detail = d.proxyAddr + " is held by another program, so authkeeper's proxy cannot listen there"
		_, port, _ := net.SplitHostPort(d.proxyAddr)
		r.Fix = "stop that program (`lsof -i :" + port + "` names it), or start authkeeper with --proxy-addr 127.0.0.1:OTHER and run `authkeeper clients --write CLIENT`"
	default:
		r.Status, r.Detail = checkFail, fmt.Sprintf("cannot listen on %s: %v", d.proxyAddr, plainNetErr(err))
		r.Fix = "choose another address with --proxy-addr 127.0.0.1:PORT"
	}
	return r
}

// listenFree reports whether addr can be listened on, by listening and closing at once.
func listenFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// sameAddr reports whether the proxy at have is the one want names (port 0 in want: any port).
func sameAddr(have, want string) bool {
	hh, hp, err1 := net.SplitHostPort(have)
	wh, wp, err2 := net.SplitHostPort(want)
	if err1 != nil || err2 != nil {
		return have == want
	}
	if wp != "0" && hp != wp {
		return false
	}
	hi, wi := net.ParseIP(hh), net.ParseIP(wh)
	return hh == wh || (hi != nil && wi != nil && hi.Equal(wi))
}

// plainNetErr is err without the operation and addresses a *net.OpError repeats ("dial tcp …:").
func plainNetErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
