package app

import (
	"fmt"

	"github.com/authkeeper/authkeeper/oauth"
)

// Servers that do not use OAuth sign-in are marked in their grant's registration method, so that the
// keeper neither plans refreshes nor asks the AS for anything.
const (
	// registrationStaticToken: the user pasted a token or API key, optionally with an expiry date. It
	// serves until then; afterwards the server needs a new token from the user.
	registrationStaticToken oauth.RegistrationMethod = "static-token"
	// registrationNoAuth: the server needs no credentials; the proxy forwards without Authorization.
	registrationNoAuth oauth.RegistrationMethod = "no-auth"
)

// unmanaged reports whether the keeper's grant is a static token or no auth at all. Caller holds k.mu.
func (k *Keeper) unmanagedLocked() bool {
	return k.grant.Registration == registrationStaticToken || k.grant.Registration == registrationNoAuth
}

// unmanagedTokenLocked answers Token for a static-token or no-auth server. Caller holds k.mu.
func (k *Keeper) unmanagedTokenLocked() (string, error) {
	if k.grant.Registration == registrationNoAuth {
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
	if k.grant.Registration == registrationStaticToken && !k.tok.Expiry.IsZero() {
		k.armLocked(k.tok.Expiry, "expiry")
	}
}

// staticExpired ends a static token's life: the user must paste a new one. Caller holds k.mu; it
// returns the event to emit after unlocking.
func (k *Keeper) staticExpiredLocked() Event {
	k.stopTimerLocked()
	k.state, k.message = StateNeedsSignIn, "the static token expired"
	if k.announced {
		return Event{}
	}
	k.announced = true
	return Event{Kind: EventNeedsSignIn, Trigger: "expiry", Outcome: "expired", Message: k.message}
}

// authKindLocked names how the server is authenticated, for views. Caller holds k.mu.
func (k *Keeper) authKindLocked() string {
	switch k.grant.Registration {
	case registrationStaticToken:
		return "static-token"
	case registrationNoAuth:
		return "no-auth"
	}
	return "oauth"
}
