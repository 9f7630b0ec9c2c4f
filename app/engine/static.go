package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// Servers that do not use OAuth sign-in are marked in their grant's registration method, so that the
// keeper neither plans refreshes nor asks the AS for anything.
const (
	// RegistrationStaticToken: the user pasted a token or API key, optionally with an expiry date. It
	// serves until then; afterwards the server needs a new token from the user.
	RegistrationStaticToken oauth.RegistrationMethod = "static-token"
	// RegistrationNoAuth: the server needs no credentials; the proxy forwards without Authorization.
	RegistrationNoAuth oauth.RegistrationMethod = "no-auth"
)

// unmanagedLocked reports whether the keeper's grant is a static token or no auth at all. Caller holds k.mu.
func (k *Keeper) unmanagedLocked() bool {
	return k.grant.Registration == RegistrationStaticToken || k.grant.Registration == RegistrationNoAuth
}

// unmanagedTokenLocked answers Token for a static-token or no-auth server. Caller holds k.mu.
func (k *Keeper) unmanagedTokenLocked() (string, error) {
	if k.grant.Registration == RegistrationNoAuth {
		return "", nil
	}
	if k.tok.AccessToken != "" && (k.tok.Expiry.IsZero() || k.tok.Valid(k.cfg.Clock.Now(), 0)) {
		return k.tok.AccessToken, nil
	}
	return "", fmt.Errorf("%s: the static token expired; add a new one: %w", k.cfg.Name, ErrNeedsSignIn)
}

// planUnmanagedLocked arms the expiry of a static token, if it has one. Caller holds k.mu.
func (k *Keeper) planUnmanagedLocked() {
	k.stopTimerLocked()
	if k.grant.Registration == RegistrationStaticToken && !k.tok.Expiry.IsZero() {
		k.armLocked(k.tok.Expiry, TriggerExpiry)
	}
}

// staticExpiredLocked ends a static token's life: the user must paste a new one. Caller holds k.mu; it
// returns the event to emit after unlocking.
func (k *Keeper) staticExpiredLocked() Event {
	k.stopTimerLocked()
	k.state, k.message, k.cause = StateNeedsSignIn, "the static token expired", CauseStaticExpired
	if k.announced {
		return Event{}
	}
	k.announced = true
	return Event{Kind: EventNeedsSignIn, Trigger: TriggerExpiry, Outcome: OutcomeExpired, Message: k.message}
}

// authKindLocked names how the server is authenticated, for views. Caller holds k.mu.
func (k *Keeper) authKindLocked() string {
	switch k.grant.Registration {
	case RegistrationStaticToken:
		return "static-token"
	case RegistrationNoAuth:
		return "no-auth"
	}
	return "oauth"
}

// NoAuth reports whether the server was saved as needing no credentials.
func (k *Keeper) NoAuth() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.grant.Registration == RegistrationNoAuth
}

// AuthRequired turns a server saved as needing no auth into an OAuth server that needs a sign-in,
// because it answered a request with 401 and a Bearer challenge: many servers answer initialize and
// tools/list without a token and demand one only for tools/call, so the probe took them for open. The
// record is saved as an OAuth grant without a token, with the challenge's WWW-Authenticate values (a
// restart remembers it, and `authkeeper login` signs in, discovering from the challenge when its probe
// is let through again), and one needs-sign-in is announced. It reports whether this call converted
// the server.
func (k *Keeper) AuthRequired(wwwAuthenticate []string) bool {
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	if k.closed || k.grant.Registration != RegistrationNoAuth {
		k.mu.Unlock()
		return false
	}
	k.epoch++
	k.grant, k.tok, k.marker = oauth.Grant{Resource: k.grant.Resource}, oauth.Token{}, time.Time{}
	k.challenge = keptChallenge(wwwAuthenticate)
	k.state, k.cause = StateNeedsSignIn, CauseAuthRequired
	k.message = "the server now asks for an OAuth sign-in (it let the first requests through without one)"
	k.stopTimerLocked()
	k.announced = true
	rec, msg := k.recordLocked(), k.message
	k.mu.Unlock()
	k.saveOrRetry(rec)
	k.emit(Event{Kind: EventNeedsSignIn, Trigger: TriggerProxy401, Outcome: Outcome(CauseAuthRequired), Message: msg})
	return true
}

// maxChallenge bounds the WWW-Authenticate values kept in the keychain record: a server's header is
// not to grow the record without limit.
const maxChallenge = 8 << 10

// keptChallenge is the part of a 401's WWW-Authenticate values that is kept: the values in order, up to
// maxChallenge bytes in all.
func keptChallenge(values []string) []string {
	var out []string
	n := 0
	for _, v := range values {
		if n += len(v); n > maxChallenge {
			break
		}
		out = append(out, v)
	}
	return out
}

// Challenge returns the WWW-Authenticate values of the 401 that made the server an OAuth server
// (see AuthRequired); nil for any other server.
func (k *Keeper) Challenge() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.challenge)
}
