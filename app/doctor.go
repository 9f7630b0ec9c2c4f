package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
)

// `authkeeper doctor` checks, in order, the credential store, the owner, the proxy port, each server
// and the agents' config files, and prints one line per check with the fix for what fails. It changes
// nothing: it starts no engine, creates no file, and never prints a token or the proxy key.
//
// Exit status: 0 when no check failed (warnings allowed), 1 when one did. A warning is something that
// works now but is worth knowing (a command, not the app, owns the credentials; a refresh is being
// retried; no agent's config names authkeeper); a failure is something that does not work now or stops
// working without the user (a locked keychain, no owner refreshing, a server or its authorization
// server that does not answer, a token only a sign-in can renew, an agent's entry with a stale key).

// checkStatus is a check's verdict. Code branches on it; the words printed are its value.
type checkStatus string

const (
	checkOK   checkStatus = "ok"
	checkWarn checkStatus = "warn"
	checkFail checkStatus = "FAIL"
)

// checkResult is one line of the doctor's report. No field ever holds a secret.
type checkResult struct {
	Check  string      `json:"check"`  // what was checked: "keychain", "owner", "server NAME", …
	Status checkStatus `json:"status"` // ok, warn or FAIL
	Detail string      `json:"detail"` // what was found, in plain words
	Fix    string      `json:"fix,omitempty"`
}

// String is the result's line: "FAIL  keychain: the default keyring is locked; fix: …".
func (r checkResult) String() string {
	s := fmt.Sprintf("%-4s  %s: %s", r.Status, r.Check, r.Detail)
	if r.Fix != "" {
		s += "; fix: " + r.Fix
	}
	return s
}

// doctorTimeout bounds each network probe and each call to the owner: a doctor that hangs on the
// thing it should diagnose is no help.
const doctorTimeout = 5 * time.Second

func cmdDoctor(ctx context.Context, args []string, e env) error {
	fs := newFlags("doctor", e)
	var o serveOpts
	fs.StringVar(&o.proxyAddr, "proxy-addr", e.getenv("AUTHKEEPER_PROXY_ADDR"), "the proxy's stable loopback `host:port` to check "+
		"(else $AUTHKEEPER_PROXY_ADDR, the settings' proxy_port, "+engine.DefaultProxyAddr+")")
	fs.StringVar(&o.store, "store", e.getenv("AUTHKEEPER_STORE"), "the credential store to check, `KIND` keychain or file "+
		"(else $AUTHKEEPER_STORE, then the settings' choice, then keychain)")
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errors.New("usage: authkeeper doctor [--json] [--store KIND] [--proxy-addr HOST:PORT]")
	}
	d, err := newDoctor(e, o)
	if err != nil {
		return err
	}
	results := d.run(ctx)
	if d.closeFleet != nil {
		_ = d.closeFleet() // leaves the fleet at once (its membership lease is revoked)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			OK     bool          `json:"ok"`
			Checks []checkResult `json:"checks"`
		}{passed(results), results}); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			fmt.Fprintln(e.stdout, r)
		}
	}
	if !passed(results) {
		return exitCode(1)
	}
	return nil
}

// passed reports whether no check failed; warnings pass.
func passed(results []checkResult) bool {
	for _, r := range results {
		if r.Status == checkFail {
			return false
		}
	}
	return true
}

// ownerAPI is what the doctor asks the running owner; *control.Remote implements it.
type ownerAPI interface {
	Health(ctx context.Context) (engine.Health, error)
	Status(ctx context.Context) (engine.Snapshot, error)
}

var _ ownerAPI = (*control.Remote)(nil)

// keyringProbe is what the doctor asks the OS keychain; *keychain.KeyringStore implements it.
type keyringProbe interface {
	// Locked reports a known-locked keychain without showing an unlock prompt.
	Locked() bool
	// Check reads a probe item: nil, or an error wrapping keychain.ErrLocked or ErrUnavailable.
	Check() error
}

var _ keyringProbe = (*keychain.KeyringStore)(nil)

// recordReader reads a server's stored record, for its token state when no owner runs.
type recordReader interface {
	Get(name string) (keychain.Record, error)
}

// doctor runs the checks. The checks run in order, each on what the earlier ones found (the owner's
// status, the store that answered), so a doctor is used once, by one goroutine (run probes the
// servers concurrently itself).
type doctor struct {
	paths     engine.Paths
	settings  keychain.Settings
	badConfig error  // the settings file could not be read; nil when it could (or is absent)
	storeKind string // "keychain" or "file"
	proxyAddr string // the proxy's stable address, which agents' configs name
	version   string // this program's version, compared with the owner's

	owner   ownerAPI
	keyring func() (keyringProbe, error) // opens the OS keychain (called only for storeKind keychain)
	// openFleet opens a fleet's etcd store (storeKind an etcd:// URL) as a short-lived instance;
	// closeFleet, once it did, leaves the fleet again.
	openFleet  func(url string) (keychain.Store, engine.Fleet, error)
	closeFleet func() error
	http       *http.Client            // probes servers and authorization servers; never sends a token
	listen     func(addr string) error // nil when addr could be listened on (the port is free)
	audit      func(clients.Dirs, clients.Setup) []clients.Finding
	dirs       clients.Dirs
	exe        string // this program, resolved
	tray       bool   // this program is the tray build (which writes the headless build next to it into stdio entries)
	now        func() time.Time

	// Found by the checks, for the later ones.
	store    recordReader     // the store, once it answered; nil otherwise
	health   *engine.Health   // the owner's /healthz; nil when none answers
	snapshot *engine.Snapshot // the owner's status; nil when none answers
}

// newDoctor resolves what serve would use (the settings, the store, the proxy's address) without
// creating or changing any file.
func newDoctor(e env, o serveOpts) (*doctor, error) {
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return nil, err
	}
	d := &doctor{paths: paths, settings: keychain.DefaultSettings(), version: Version,
		owner: control.NewRemote(engine.OwnerSocket(paths)),
		keyring: func() (keyringProbe, error) {
			return keychain.NewKeyringStore(keychain.KeyringConfig{Timeout: doctorTimeout})
		},
		http: &http.Client{Timeout: doctorTimeout}, listen: listenFree, audit: clients.Audit, now: time.Now}
	// Read, not keychain.ConfigFile.Load: a diagnosis must not move a corrupt file aside.
	if data, err := os.ReadFile(paths.ConfigFile()); err == nil {
		if err := json.Unmarshal(data, &d.settings); err != nil {
			d.badConfig = fmt.Errorf("%s is not valid JSON (%v)", paths.ConfigFile(), err)
			d.settings = keychain.DefaultSettings()
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		d.badConfig = fmt.Errorf("%s cannot be read: %w", paths.ConfigFile(), err)
	}
	d.storeKind = o.store
	if d.storeKind == "" {
		d.storeKind = d.settings.Prefs.Store
	}
	switch {
	case d.storeKind == "", d.storeKind == "keychain":
		d.storeKind = "keychain"
	case d.storeKind == "file":
	case engine.IsFleetStore(d.storeKind):
		host, _ := os.Hostname()
		d.openFleet = fleetOpener(e, fleetOpts{instance: fmt.Sprintf("doctor-%s-%d", host, os.Getpid())})
	default:
		return nil, fmt.Errorf("doctor: store %q must be \"keychain\", \"file\" or an etcd:// URL", d.storeKind)
	}
	d.proxyAddr = o.proxyAddr
	if d.proxyAddr == "" {
		d.proxyAddr = engine.ProxyAddrFor(d.settings.Prefs)
	}
	if d.dirs, err = clients.DirsFrom(e.getenv); err != nil {
		return nil, err
	}
	d.tray = e.ui != nil
	if d.exe, err = os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(d.exe); err == nil {
			d.exe = resolved
		}
	}
	return d, nil
}

// run runs every check in order and returns their lines.
func (d *doctor) run(ctx context.Context) []checkResult {
	var out []checkResult
	if d.badConfig != nil {
		out = append(out, checkResult{Check: "settings", Status: checkFail, Detail: d.badConfig.Error(),
			Fix: "fix or delete the file (authkeeper moves a corrupt one aside at its next start, forgetting its servers)"})
	}
	out = append(out, d.checkStore())
	out = append(out, d.checkOwner(ctx))
	out = append(out, d.checkProxyPort(ctx))
	out = append(out, d.checkServers(ctx)...)
	out = append(out, d.checkClients(ctx)...)
	return out
}
