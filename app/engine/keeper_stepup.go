package engine

import (
	"slices"
	"strings"
)

// StepUp records that the server asked for scopes beyond the current token's (a 403 insufficient-scope
// challenge seen by the proxy): the next sign-in requests scopes (the union to ask for), and the server
// needs a sign-in. The current token keeps serving the calls it is good for until it expires; it is
// not refreshed, because a refresh cannot widen a grant. It reports whether this started a new
// episode (the first StepUp for these scopes), which is also when the event is emitted.
func (k *Keeper) StepUp(scopes []string) bool {
	k.mu.Lock()
	if k.state == StateDisabled || k.closed {
		k.mu.Unlock()
		return false
	}
	pending := k.state == StateNeedsSignIn && slices.Equal(k.grant.Scopes, scopes)
	if pending {
		k.mu.Unlock()
		return false
	}
	k.grant.Scopes = slices.Clone(scopes)
	k.state, k.cause = StateNeedsSignIn, CauseStepUp
	k.message = "the server needs more scope (" + strings.Join(scopes, " ") + "): sign in again to grant it"
	k.stopTimerLocked()
	k.announced = true
	msg := k.message
	k.mu.Unlock()
	k.emit(Event{Kind: EventNeedsSignIn, Trigger: TriggerStepUp, Outcome: OutcomeInsufficientScope, Scopes: scopes, Message: msg})
	return true
}

// Refused reports whether the server refused the current token and the refresh after it failed
// (revoked), or refused a token that cannot be renewed: the locally unexpired token is dead, and only
// a sign-in helps.
func (k *Keeper) Refused() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state == StateRevoked || (k.state == StateNeedsSignIn && k.cause == CauseTokenRefused)
}

// RefusedAfterRefresh records that the server refused token even though it was just refreshed. Unless
// the keeper has moved on to another token meanwhile, the server is marked revoked (one event): only a
// sign-in can help, and refreshing per call would burn a rotation on every request.
func (k *Keeper) RefusedAfterRefresh(token string) {
	k.mu.Lock()
	if token != k.tok.AccessToken || k.state == StateRevoked {
		k.mu.Unlock()
		return
	}
	k.state, k.message, k.cause = StateRevoked, "the server refused a freshly refreshed token", CauseServerRefused
	k.stopTimerLocked()
	announce := !k.announced
	k.announced = true
	k.mu.Unlock()
	if announce {
		k.emit(Event{Kind: EventRevoked, Trigger: TriggerProxy401, Outcome: OutcomeRefused, Message: "the server refused a freshly refreshed token"})
	}
}
