package engine

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
		e.publish(Event{Kind: EventWarning, Server: s.Name, Trigger: TriggerLoad, Outcome: OutcomeError,
			Message: "cannot read credentials: " + err.Error()})
	}
	policy := e.cfg.Policy
	if s.RefreshFraction > 0 {
		policy.Fraction = s.RefreshFraction
	}
	st := e.fromRecord(s, rec)
	kc := KeeperConfig{Name: s.Name, Clock: e.cfg.Clock, Store: e.store, Auth: e.oauth,
		Busy: e.busy, Emit: e.publish, Policy: policy, OnUnreadable: e.kickReload}
	if e.fleet != nil {
		kc.Fleet = e.fleet.f
		kc.OnConflict = func() { go e.fleetRead(s.Name, false) }
	}
	k, err := NewKeeper(kc, st.tok, st.grant, st.issued)
	if err != nil {
		return nil, err
	}
	k.SetRevision(rec.Revision)
	k.challenge = st.challenge // before Start: nothing else holds k yet
	switch {
	case unreadable != nil:
		k.SetUnreadable(unreadable)
	case !st.refreshStarted.IsZero():
		k.SetRefreshStarted(st.refreshStarted)
	}
	return k, nil
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

// stored is what a keeper holds from a stored record.
type stored struct {
	tok            oauth.Token
	grant          oauth.Grant
	issued         time.Time // when the pair was obtained
	refreshStarted time.Time // when a refresh that may not have been saved started; zero: none
	challenge      []string  // see keychain.Record.Challenge
}

// fromRecord is what a keeper for server s holds from its stored record (empty when there is none):
// the grant is bound to the server's URL (without its query, see oauth.ResourceOf) when the record
// names no resource, and a pair whose time is
// unknown counts as obtained now.
func (e *Engine) fromRecord(s keychain.Server, rec keychain.Record) stored {
	g := grantOf(rec.Binding)
	if g.Resource == "" {
		g.Resource = oauth.ResourceOf(s.URL) // as a sign-in would name it: without the query
	}
	issued := rec.Written
	if issued.IsZero() {
		issued = e.cfg.Clock.Now()
	}
	return stored{tok: tokenOf(rec), grant: g, issued: issued, refreshStarted: rec.RefreshStarted, challenge: rec.Challenge}
}
