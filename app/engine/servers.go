package engine

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
	// Fleet is set when the credentials are shared with other instances (see FleetMode).
	Fleet *FleetView `json:"fleet,omitempty"`
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
	e.fleetStatus(&s)
	return s
}

// Subscribe returns the current snapshot and the stream of events from that moment on.
func (e *Engine) Subscribe() (Snapshot, <-chan Event, func()) {
	ch, cancel := e.hub.Subscribe()
	return e.Snapshot(), ch, cancel
}

// Busy is the engine's lease set (the tray toggle and the control API start and end leases on it).
func (e *Engine) Busy() *Busy { return e.busy }

// keeper returns server name's keeper, or an error wrapping ErrUnknownServer.
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
func (e *Engine) Refresh(ctx context.Context, name string, reason Trigger) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	return k.ForceRefresh(ctx, reason)
}

// Probe says what the server at url needs (OAuth sign-in, a static token, nothing).
func (e *Engine) Probe(ctx context.Context, url string) (*oauth.Probe, error) {
	return e.oauth.Probe(ctx, url)
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
	// The keeper announces nothing itself (the user chose this: no "sign in again" notice), but the
	// views must redraw now, not at their next timer.
	e.publish(Event{Kind: EventSignedOut, Server: name, Trigger: TriggerUser, Outcome: OutcomeOK})
	return rerr
}

// Remove revokes server name's tokens, deletes them and removes the server from the settings. The
// keeper is closed first: nothing refreshes or saves for a server being removed.
//
// In a fleet the grant is the fleet's: Remove takes the server off this instance only (it leaves the
// election and stops serving it) and neither revokes nor deletes the shared credentials; `logout`
// ends the grant for the whole fleet.
func (e *Engine) Remove(ctx context.Context, name string) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	k.Close() // a refresh in flight finishes (and is saved) first; a closed keeper refuses asks
	var rerr error
	if e.fleet != nil {
		e.fleet.f.Leave(name)
	} else {
		tok, g := k.Forget()
		rerr = e.revoke(ctx, tok, g)
		if err := e.store.Delete(name); err != nil && !errors.Is(err, keychain.ErrNotFound) {
			return fmt.Errorf("%s: delete credentials: %w", name, err)
		}
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
	e.publish(Event{Kind: EventRemoved, Server: name, Trigger: TriggerUser, Outcome: OutcomeOK})
	return rerr
}

// revoke revokes the refresh and access tokens at the AS. A server without a revocation endpoint is
// not an error: the local copies are deleted either way.
func (e *Engine) revoke(ctx context.Context, tok oauth.Token, g oauth.Grant) error {
	if g.Registration == RegistrationStaticToken || g.Registration == RegistrationNoAuth {
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
