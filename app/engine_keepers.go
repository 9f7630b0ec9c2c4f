package app

import (
	"errors"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// newKeeper builds the keeper for server s from its stored record (or none: needs sign-in).
func (e *Engine) newKeeper(s keychain.Server) (*Keeper, error) {
	rec, err := e.store.Get(s.Name)
	var unreadable error
	if err != nil && !errors.Is(err, keychain.ErrNotFound) {
		// Keep the server listed, degraded: the engine reads the keychain again until it answers, so
		// unlocking it is enough — no sign-in, no restart.
		rec, unreadable = keychain.Record{}, err
		e.publish(Event{Kind: EventWarning, Server: s.Name, Trigger: "load", Outcome: "error",
			Message: "cannot read credentials: " + err.Error()})
	}
	policy := e.cfg.Policy
	if s.RefreshFraction > 0 {
		policy.Fraction = s.RefreshFraction
	}
	tok, g, issued, started := e.fromRecord(s, rec)
	k, err := NewKeeper(KeeperConfig{Name: s.Name, Clock: e.cfg.Clock, Store: e.store, Auth: e.oauth,
		Busy: e.busy, Emit: e.publish, Policy: policy, OnUnreadable: e.kickReload}, tok, g, issued)
	switch {
	case err != nil:
	case unreadable != nil:
		k.SetUnreadable(unreadable)
	case !started.IsZero():
		k.SetRefreshStarted(started)
	}
	return k, err
}

// newOAuthClient is the OAuth client for cfg, with cimdURL as the Client ID Metadata Document's URL
// unless cfg.OAuth names one.
func newOAuthClient(cfg Config, cimdURL string) (*oauth.Client, error) {
	oc := cfg.OAuth
	oc.HTTPClient, oc.Opener, oc.Clock = cfg.HTTPClient, cfg.Opener, cfg.Clock
	if oc.ClientMetadataURL == "" {
		oc.ClientMetadataURL = cimdURL
	}
	return oauth.New(oc)
}

// fromRecord is what a keeper for server s holds from its stored record (empty when there is none):
// the token pair, the grant (bound to the server's URL when the record names no resource), when the
// pair was obtained (now, when unknown), and when a refresh that may not have been saved started.
func (e *Engine) fromRecord(s keychain.Server, rec keychain.Record) (oauth.Token, oauth.Grant, time.Time, time.Time) {
	g := grantOf(rec.Binding)
	if g.Resource == "" {
		g.Resource = s.URL
	}
	issued := rec.Written
	if issued.IsZero() {
		issued = e.cfg.Clock.Now()
	}
	return tokenOf(rec), g, issued, rec.RefreshStarted
}
