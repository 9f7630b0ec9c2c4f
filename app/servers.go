package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// Errors callers branch on.
var (
	// ErrUnknownServer: no server of that name is configured.
	ErrUnknownServer = errors.New("no such server")
	// ErrServerExists: Add was given a name already in use.
	ErrServerExists = errors.New("a server of that name exists")
)

// Snapshot is the engine's whole state for a view: every server and every busy lease.
type Snapshot struct {
	Time     time.Time      `json:"time"`
	ProxyURL string         `json:"proxy_url,omitempty"`
	Servers  []ServerStatus `json:"servers"`
	Leases   []Lease        `json:"leases"`
}

// Snapshot returns the current state.
func (e *Engine) Snapshot() Snapshot {
	s := Snapshot{Time: e.cfg.Clock.Now(), ProxyURL: e.ProxyURL(), Leases: e.busy.Leases(), Servers: []ServerStatus{}}
	e.mu.Lock()
	urls := map[string]string{}
	for _, srv := range e.settings.Servers {
		urls[srv.Name] = srv.URL
	}
	e.mu.Unlock()
	for _, k := range e.keeperList() {
		st := k.Status()
		st.URL = urls[st.Name]
		s.Servers = append(s.Servers, st)
	}
	return s
}

// Subscribe returns the current snapshot and the stream of events from that moment on.
func (e *Engine) Subscribe() (Snapshot, <-chan Event, func()) {
	ch, cancel := e.hub.Subscribe()
	return e.Snapshot(), ch, cancel
}

// Busy is the engine's lease set (the tray toggle and the control API start and end leases on it).
func (e *Engine) Busy() *Busy { return e.busy }

func (e *Engine) keeper(name string) (*Keeper, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.keepers[name]
	if k == nil {
		return nil, fmt.Errorf("%q: %w", name, ErrUnknownServer)
	}
	return k, nil
}

// Server returns the settings of server name.
func (e *Engine) Server(name string) (keychain.Server, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.settings.Servers {
		if s.Name == name {
			return s, nil
		}
	}
	return keychain.Server{}, fmt.Errorf("%q: %w", name, ErrUnknownServer)
}

// Token returns a valid access token for server name (refreshing first if needed).
func (e *Engine) Token(ctx context.Context, name string) (string, error) {
	k, err := e.keeper(name)
	if err != nil {
		return "", err
	}
	return k.Token(ctx)
}

// Refresh forces a refresh of server name now.
func (e *Engine) Refresh(ctx context.Context, name, reason string) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	return k.ForceRefresh(ctx, reason)
}

// Rejected reports that the server refused token (a 401 through the proxy); see Keeper.Rejected.
func (e *Engine) Rejected(ctx context.Context, name, token string) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	return k.Rejected(ctx, token)
}

// Probe says what the server at url needs (OAuth sign-in, a static token, nothing).
func (e *Engine) Probe(ctx context.Context, url string) (*oauth.Probe, error) {
	return e.oauth.Probe(ctx, url)
}

// AddRequest describes a server to add.
type AddRequest struct {
	Name string // required; see keychain.ValidName
	URL  string // the MCP endpoint, required
	// Client is a client id registered by hand (Entra ID and other enterprise IdPs); nil registers
	// automatically.
	Client *oauth.StaticClient
	// Device signs in with the device flow instead of the browser; OnDevice receives the code to show.
	Device   bool
	OnDevice func(*oauth.DeviceAuthorization)
	// StaticToken is a token or API key the user pasted, for a server without OAuth sign-in; it is kept
	// in the keychain and sent as a bearer token until StaticExpiry (zero: no expiry).
	StaticToken  string
	StaticExpiry time.Time
}

// Add probes the server, signs in when it needs OAuth, and only then saves it: a server whose sign-in
// fails leaves nothing behind — no settings entry, no keychain record.
func (e *Engine) Add(ctx context.Context, req AddRequest) error {
	if err := keychain.ValidName(req.Name); err != nil {
		return err
	}
	// Reserve the name for the whole add, so two adds of one name cannot both sign in and save.
	e.mu.Lock()
	_, exists := e.keepers[req.Name]
	if exists || e.adding[req.Name] {
		e.mu.Unlock()
		return fmt.Errorf("%q: %w", req.Name, ErrServerExists)
	}
	e.adding[req.Name] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.adding, req.Name)
		e.mu.Unlock()
	}()
	p, err := e.oauth.Probe(ctx, req.URL)
	if err != nil {
		return fmt.Errorf("probe %s: %w", req.URL, err)
	}
	srv := keychain.Server{Name: req.Name, URL: req.URL}
	if req.Client != nil {
		srv.ClientID = req.Client.ID
	}
	var (
		tok oauth.Token
		g   = oauth.Grant{Resource: req.URL}
	)
	switch {
	case req.StaticToken != "":
		tok = oauth.Token{AccessToken: req.StaticToken, TokenType: "Bearer", Expiry: req.StaticExpiry}
		g.Registration = registrationStaticToken
	case p.Requirement == oauth.OAuthSignIn:
		if tok, g, err = e.signIn(ctx, p, req.Client, nil, req.Device, req.OnDevice); err != nil {
			return err
		}
	case p.Requirement == oauth.StaticToken:
		return fmt.Errorf("%s needs a static token or API key (paste it when adding the server): %s", req.URL, p.Reason)
	default:
		g.Registration = registrationNoAuth
	}
	// Credentials first: a keychain failure must not leave a server entry without them. (A no-auth
	// server's record holds no secret, only the marker that it needs none.)
	if _, err := e.store.Put(req.Name, toRecord(tok, g)); err != nil {
		return fmt.Errorf("%s: save credentials: %w", req.Name, err)
	}
	e.mu.Lock()
	next := e.settings
	next.Servers = append(append([]keychain.Server(nil), e.settings.Servers...), srv)
	if err := e.conf.Save(next); err != nil {
		e.mu.Unlock()
		// Leave nothing half-added: drop the credentials and tell the AS we are done with them.
		derr := e.store.Delete(req.Name)
		rerr := e.oauth.Revoke(context.Background(), g, tok)
		if errors.Is(rerr, oauth.ErrRevocationUnsupported) {
			rerr = nil
		}
		return errors.Join(fmt.Errorf("%s: save settings: %w", req.Name, err), derr, rerr)
	}
	e.settings = next
	e.mu.Unlock()
	k, err := e.newKeeper(srv)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.closing {
		// The engine is closing (quit, or a hand-over to the app): a keeper started now would never be
		// closed and would refresh next to the new owner. The record is saved; the next owner loads it.
		e.mu.Unlock()
		k.Close()
		return fmt.Errorf("%s: %w", req.Name, errClosed)
	}
	e.keepers[req.Name] = k
	e.mu.Unlock()
	k.Start()
	e.publish(Event{Kind: EventAdded, Server: req.Name, Trigger: "user", Outcome: "ok", Scopes: tok.Scopes, Expiry: tok.Expiry})
	return nil
}

// SignIn signs server name in again (browser, or device flow when device is set) and installs the new
// tokens; the proxy serves them from the next request on.
func (e *Engine) SignIn(ctx context.Context, name string, device bool, onDevice func(*oauth.DeviceAuthorization)) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	srv, err := e.Server(name)
	if err != nil {
		return err
	}
	p, err := e.oauth.Probe(ctx, srv.URL)
	if err != nil {
		return fmt.Errorf("probe %s: %w", srv.URL, err)
	}
	if p.Requirement != oauth.OAuthSignIn {
		return fmt.Errorf("%s: nothing to sign in to: %s", name, p.Reason)
	}
	prev := k.Grant()
	var client *oauth.StaticClient
	if srv.ClientID != "" {
		client = &oauth.StaticClient{ID: srv.ClientID, Secret: prev.ClientSecret, AuthMethod: prev.AuthMethod, RedirectPort: prev.RedirectPort}
	}
	tok, g, err := e.signIn(ctx, p, client, &prev, device, onDevice)
	if err != nil {
		return err
	}
	return k.Adopt(tok, g)
}

func (e *Engine) signIn(ctx context.Context, p *oauth.Probe, client *oauth.StaticClient, prev *oauth.Grant,
	device bool, onDevice func(*oauth.DeviceAuthorization)) (oauth.Token, oauth.Grant, error) {
	opts := oauth.SignInOptions{Client: client, Previous: prev}
	if prev != nil && len(prev.Scopes) > 0 {
		opts.Scopes = prev.Scopes
	}
	if !device {
		return e.oauth.SignIn(ctx, p, opts)
	}
	d, err := e.oauth.StartDevice(ctx, p, opts)
	if err != nil {
		return oauth.Token{}, oauth.Grant{}, err
	}
	if onDevice != nil {
		onDevice(d)
	}
	return e.oauth.PollDevice(ctx, d)
}

// Logout revokes server name's tokens (RFC 7009, best effort) and forgets them; the server stays
// configured and needs a sign-in. A refresh in flight finishes first, so the pair revoked is the
// newest and no late save re-creates the record.
func (e *Engine) Logout(ctx context.Context, name string) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	if err := k.Idle(ctx); err != nil {
		return err
	}
	tok, g := k.Forget()
	rerr := e.revoke(ctx, tok, g)
	if err := e.store.Delete(name); err != nil && !errors.Is(err, keychain.ErrNotFound) {
		return fmt.Errorf("%s: delete credentials: %w", name, err)
	}
	return rerr
}

// Remove revokes server name's tokens, deletes them and removes the server from the settings. The
// keeper is closed first: nothing refreshes or saves for a server being removed.
func (e *Engine) Remove(ctx context.Context, name string) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	k.Close()
	tok, g := k.Forget()
	rerr := e.revoke(ctx, tok, g)
	if err := e.store.Delete(name); err != nil && !errors.Is(err, keychain.ErrNotFound) {
		return fmt.Errorf("%s: delete credentials: %w", name, err)
	}
	e.mu.Lock()
	next := e.settings
	next.Servers = []keychain.Server{}
	for _, s := range e.settings.Servers {
		if s.Name != name {
			next.Servers = append(next.Servers, s)
		}
	}
	if err := e.conf.Save(next); err != nil {
		e.mu.Unlock()
		return fmt.Errorf("%s: save settings: %w", name, err)
	}
	e.settings = next
	delete(e.keepers, name)
	e.mu.Unlock()
	e.publish(Event{Kind: EventRemoved, Server: name, Trigger: "user", Outcome: "ok"})
	return rerr
}

// revoke revokes the refresh and access tokens at the AS. A server without a revocation endpoint is
// not an error: the local copies are deleted either way.
func (e *Engine) revoke(ctx context.Context, tok oauth.Token, g oauth.Grant) error {
	if g.Registration == registrationStaticToken || g.Registration == registrationNoAuth {
		return nil
	}
	if tok.AccessToken == "" && tok.RefreshToken == "" {
		return nil
	}
	err := e.oauth.Revoke(ctx, g, tok)
	if errors.Is(err, oauth.ErrRevocationUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke at %s (local credentials deleted anyway): %w", g.Issuer, err)
	}
	return nil
}
