// Package engine is authkeeper's core: the owner lock, paths and settings, one keeper per server
// (single-flight refresh, persist before adopt, the refresh-start marker), the refresh plan, busy
// leases, wake detection, the event hub and the audit log, and static tokens. It imports none of its
// front ends: the proxy's and the control API's listeners are handed to it as FrontEnd functions by
// package app, and the tray is a view over its Snapshot and Subscribe.
package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// DefaultProxyAddr is the proxy's stable loopback address: agents' MCP configs name it, so it must not
// change between runs.
const DefaultProxyAddr = "127.0.0.1:47615"

// ErrNotOwner means another authkeeper process owns the credentials; talk to it over the control API.
var ErrNotOwner = errors.New("another authkeeper process owns the credentials")

// Config configures an Engine. The zero value of every field but Paths means its default.
type Config struct {
	// Paths are the directories to use; required (see DefaultPaths).
	Paths Paths
	// ProxyAddr is the loopback host:port of the MCP proxy; default the settings' proxy_port on
	// 127.0.0.1, else DefaultProxyAddr. Port 0 picks a free port (tests). A non-loopback host is
	// rejected: the proxy spends the user's tokens.
	ProxyAddr string
	// NoProxy starts the engine without the proxy listener.
	NoProxy bool
	// Version is reported by the control API; default "dev".
	Version string
	// Clock is the engine's time; default SystemClock.
	Clock Clock
	// Store holds the credentials; default: the OS keychain, or the 0600 file store when StoreKind or
	// the settings say "file".
	Store keychain.Store
	// StoreKind overrides the settings' store choice: "keychain", "file", an etcd:// URL (a fleet's
	// shared store, opened by OpenFleet), or "" for the settings'.
	StoreKind string
	// OpenFleet opens the store a fleet shares, named by an etcd:// URL; package app sets it (it owns
	// app/fleet). Nil: such a store kind is an error. Fleet, when set, is used instead (with Store).
	OpenFleet func(url string) (keychain.Store, Fleet, error)
	Fleet     Fleet
	// HTTPClient makes every request to authorization servers; default: 30 s timeout.
	HTTPClient *http.Client
	// Opener opens the browser for interactive sign-in; default: the system browser (pkg/browser).
	Opener oauth.Opener
	// OAuth tunes the OAuth client (timeouts, default lifetimes); HTTPClient, Opener and Clock above
	// take precedence over its fields. Its ClientMetadataURL (`serve --client-metadata-url`) wins over
	// the settings' prefs.client_metadata_url; with neither, authorization servers that accept Client
	// ID Metadata Documents register authkeeper dynamically instead.
	OAuth oauth.Config
	// Policy is the default refresh policy; per-server settings override its fraction.
	Policy Policy
	// Temporary marks an owner that a command (a bridge, the headers helper, the CLI) started because
	// no app was running: it hands ownership over when the app or `serve` starts (POST /v1/handover),
	// so that they get the stable proxy port and the tray. OnHandover, if set, is called as it starts.
	Temporary  bool
	OnHandover func()
	// Proxy and Control open the engine's two listeners, the MCP proxy and the control API (see
	// FrontEnd); the wiring passes proxy.FrontEnd and control.FrontEnd. Nil: that listener is not
	// opened (tests of the engine alone).
	Proxy, Control FrontEnd
}

// Engine is authkeeper's core: it owns every credential on the machine, keeps the tokens fresh, and
// serves the proxy and the control API. The tray and the CLI are views over it. Safe for concurrent use.
type Engine struct {
	cfg      Config
	started  time.Time
	owner    *keychain.FileLock
	conf     *keychain.ConfigFile
	store    keychain.Store
	oauth    *oauth.Client
	hub      *Hub
	audit    *AuditLog
	busy     *Busy
	wake     *WakeDetector
	fleet    *fleetState // set when the credentials are shared with a fleet
	warning  string      // shown at every start, e.g. the file store's
	proxyKey string      // the per-install access key local callers present to the proxy
	control  string      // the control API's address, chosen in New (see newControlAddr)

	mu       sync.Mutex
	showUI   func() // set by the tray: a second launch asks the running one to show its status
	settings keychain.Settings
	keepers  map[string]*Keeper
	adding   map[string]bool // names reserved by an Add in progress
	closing  bool            // Close has begun: no new keeper starts
	proxy    net.Listener
	servers  []*http.Server

	closeOnce sync.Once
	closeErr  error

	// Credentials the keychain would not give at start (locked, not answering) are read again: every
	// keychainRetry, and at once (at most once a second) when a caller asks for such a server's token.
	reloadMu     sync.Mutex // guards the two fields below
	reloadTimer  Timer
	reloadClosed bool
	reloading    atomic.Bool  // a reload runs; others are skipped, never queued
	lastReload   atomic.Int64 // when the last reload started, Unix nanoseconds
}

// ProxyAddrFor is the proxy's address when no flag or environment variable names one: the settings'
// proxy_port on 127.0.0.1, else DefaultProxyAddr. Agents' configs name it, so it must stay put.
func ProxyAddrFor(p keychain.Prefs) string {
	if p.ProxyPort != 0 {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.ProxyPort))
	}
	return DefaultProxyAddr
}

// KeychainRetry is how often credentials that could not be read are tried again.
const KeychainRetry = 15 * time.Second

// New validates cfg and returns an engine that is not yet running.
func New(cfg Config) (*Engine, error) {
	if cfg.Paths.ConfigDir == "" || cfg.Paths.StateDir == "" || cfg.Paths.RuntimeDir == "" {
		return nil, errors.New("engine config: Paths must name the config, state and runtime directories")
	}
	if cfg.ProxyAddr != "" { // else the settings' proxy_port, or DefaultProxyAddr: see load
		host, _, err := net.SplitHostPort(cfg.ProxyAddr)
		if err != nil {
			return nil, fmt.Errorf("engine config: proxy address %q: %w", cfg.ProxyAddr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("engine config: proxy address %q must be a loopback IP such as 127.0.0.1", cfg.ProxyAddr)
		}
	}
	switch {
	case cfg.StoreKind == "", cfg.StoreKind == "keychain", cfg.StoreKind == "file", IsFleetStore(cfg.StoreKind):
	default:
		return nil, fmt.Errorf("engine config: store %q must be \"keychain\", \"file\" or an etcd:// URL", cfg.StoreKind)
	}
	if cfg.Fleet != nil && cfg.Store == nil {
		return nil, errors.New("engine config: Fleet needs the fleet's Store")
	}
	if _, err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Opener == nil {
		cfg.Opener = systemBrowser{}
	}
	if u := cfg.OAuth.ClientMetadataURL; u != "" {
		if err := keychain.ValidClientMetadataURL(u); err != nil {
			return nil, fmt.Errorf("engine config: %w", err)
		}
	}
	client, err := newOAuthClient(cfg, "")
	if err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	control, err := newControlAddr(cfg.Paths)
	if err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	e := &Engine{cfg: cfg, oauth: client, control: control, hub: NewHub(), keepers: map[string]*Keeper{}, adding: map[string]bool{}}
	e.busy = NewBusy(cfg.Clock, e.busyChanged)
	return e, nil
}

// Start takes the owner lock, loads the settings and credentials, plans every refresh, and opens the
// listeners. It returns ErrNotOwner when another process owns the credentials.
func (e *Engine) Start(ctx context.Context) (err error) {
	if err := e.cfg.Paths.Ensure(); err != nil {
		return err
	}
	if e.owner, err = AcquireOwner(e.cfg.Paths, e.control); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if err := e.load(); err != nil {
		return err
	}
	if e.proxyKey, err = LoadProxyKey(e.cfg.Paths.ConfigDir); err != nil {
		return err
	}
	if e.audit, err = OpenAuditLog(AuditConfig{Dir: e.cfg.Paths.StateDir}); err != nil {
		return err
	}
	if err := e.listen(); err != nil {
		return err
	}
	e.mu.Lock()
	e.started = e.cfg.Clock.Now()
	for name, k := range e.keepers {
		if at, ok := k.interruptedSince(); ok && e.audit.announced(name, at) {
			k.markAnnounced() // a command's engine announced this episode before this process took over
		}
		k.Start()
		if e.joining() {
			e.fleet.f.Join(name)
		}
	}
	e.mu.Unlock()
	if e.fleet != nil {
		e.watchFleetView()
	}
	e.wake = NewWakeDetector(e.cfg.Clock, 0, 0, e.woke)
	e.scheduleReload()
	return nil
}

// load reads the settings, opens the credential store and creates a keeper per server.
func (e *Engine) load() error {
	conf, err := keychain.NewConfigFile(e.cfg.Paths.ConfigDir, nil)
	if err != nil {
		return err
	}
	e.conf = conf
	settings, err := conf.Load()
	if errors.Is(err, keychain.ErrCorruptConfig) {
		// The file was moved aside, never overwritten; run with no servers and say so.
		e.warning = err.Error()
		settings = keychain.DefaultSettings()
	} else if err != nil {
		return err
	}
	if e.store == nil {
		if e.store, err = e.openStore(settings); err != nil {
			return err
		}
	}
	e.settings = settings
	if e.cfg.ProxyAddr == "" {
		e.cfg.ProxyAddr = ProxyAddrFor(settings.Prefs)
	}
	if e.cfg.OAuth.ClientMetadataURL == "" && settings.Prefs.ClientMetadataURL != "" {
		// The settings name the Client ID Metadata Document; the flag, when given, won in New.
		if e.oauth, err = newOAuthClient(e.cfg, settings.Prefs.ClientMetadataURL); err != nil {
			return err
		}
	}
	for _, s := range settings.Servers {
		k, err := e.newKeeper(s)
		if err != nil {
			return err
		}
		e.keepers[s.Name] = k
	}
	return nil
}

// openStore opens the keychain (or, only when chosen explicitly, the file store), failing clearly
// when the keychain cannot be used: there is never a silent fallback to plain text.
func (e *Engine) openStore(settings keychain.Settings) (keychain.Store, error) {
	if e.cfg.Store != nil {
		if e.cfg.Fleet != nil {
			e.joinFleet(e.cfg.Fleet)
		}
		return e.cfg.Store, nil
	}
	kind := e.cfg.StoreKind
	if kind == "" {
		kind = settings.Prefs.Store
	}
	if IsFleetStore(kind) {
		if e.cfg.OpenFleet == nil {
			return nil, fmt.Errorf("store %s: this program cannot open a fleet's store", kind)
		}
		st, f, err := e.cfg.OpenFleet(kind)
		if err != nil {
			return nil, err
		}
		e.joinFleet(f)
		return st, nil
	}
	if kind == "file" {
		fs, err := keychain.NewFileStore(keychain.FileConfig{Dir: e.cfg.Paths.ConfigDir})
		if err != nil {
			return nil, err
		}
		e.warning = fs.Warning()
		return fs, nil
	}
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		return nil, err
	}
	// An unavailable or locked keychain does not stop the engine: it serves what it can, every server
	// that needs credentials says why it cannot have them, and each call retries the keychain, so an
	// unlock takes effect without a restart. There is never a fallback to plain text.
	if err := ks.Check(); err != nil {
		e.warning = err.Error()
	}
	return ks, nil
}

// publish records an event in the audit log and fans it out to subscribers.
func (e *Engine) publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.cfg.Clock.Now()
	}
	if e.audit != nil {
		_ = e.audit.Write(ev) // an unwritable audit log must not stop refreshes
	}
	e.hub.Publish(ev)
}

// busyChanged runs deferred refreshes, staggered, once nothing keeps their server busy, and tells
// subscribers when the leases changed.
func (e *Engine) busyChanged(leases bool) {
	i := 0
	for _, k := range e.keeperList() {
		if k.Resume(time.Duration(i) * staggerStep) {
			i++
		}
	}
	if leases {
		e.hub.Publish(Event{Time: e.cfg.Clock.Now(), Kind: EventBusyChanged})
	}
}

// woke re-evaluates every deadline after the machine slept.
func (e *Engine) woke(slept time.Duration) {
	for i, k := range e.keeperList() {
		k.Reevaluate(time.Duration(i) * staggerStep)
	}
	e.publish(Event{Kind: EventWarning, Trigger: TriggerWake, Message: fmt.Sprintf("woke after %s; re-planned every refresh", slept.Round(time.Second))})
}

// staggerStep spaces refreshes that come due together (idle after a busy turn, wake from sleep), so
// the AS does not see a burst.
const staggerStep = 500 * time.Millisecond

func (e *Engine) keeperList() []*Keeper {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Keeper, 0, len(e.keepers))
	for _, s := range e.settings.Servers {
		if k := e.keepers[s.Name]; k != nil {
			out = append(out, k)
		}
	}
	return out
}

// Close stops refreshing, closes the listeners (waiting up to five seconds for requests in flight),
// and releases the owner lock. Calls after the first return the first's result.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.close() })
	return e.closeErr
}

// Handover ends a temporary owner's engine so that the app can own: OnHandover first (so that the
// process looks for the app, not for a new engine of its own, once its proxy is gone), then everything
// Close does — refreshes in flight finish and are saved, then the owner lock is released.
func (e *Engine) Handover() {
	if e.cfg.OnHandover != nil {
		e.cfg.OnHandover()
	}
	_ = e.Close()
}

func (e *Engine) close() error {
	if e.wake != nil {
		e.wake.Stop()
	}
	e.reloadMu.Lock()
	e.reloadClosed = true
	if e.reloadTimer != nil {
		e.reloadTimer.Stop()
	}
	e.reloadMu.Unlock()
	e.mu.Lock()
	e.closing = true // an Add still running must not start a keeper this Close would miss
	servers := e.servers
	e.servers = nil
	keepers := make([]*Keeper, 0, len(e.keepers))
	for _, k := range e.keepers {
		keepers = append(keepers, k)
	}
	e.mu.Unlock()
	// Listeners first, so no request meets a closing keeper; long-lived SSE streams never go idle, so
	// they are cut after the grace period.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, s.Close())
		}
	}
	// Keepers close outside the engine's lock: each waits for its refresh in flight and saves any pair
	// still only in memory, so no rotated refresh token is lost at exit.
	var wg sync.WaitGroup
	for _, k := range keepers {
		wg.Go(k.Close)
	}
	wg.Wait()
	if e.fleet != nil {
		// After the keepers: their last saves need the elections they hold.
		errs = append(errs, e.fleet.f.Close())
	}
	if e.audit != nil {
		errs = append(errs, e.audit.Close())
	}
	if e.owner != nil {
		removeControlAddr(e.control)
		errs = append(errs, e.owner.Unlock())
		e.owner = nil
	}
	return errors.Join(errs...)
}
