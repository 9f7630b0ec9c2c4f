package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// Loading a stored record: the state a pair starts in, the refresh that a crash interrupted, and
// credentials the keychain would not give at start.

// initialStateLocked sets the state for a token pair just loaded. Caller holds k.mu (or owns k).
func (k *Keeper) initialStateLocked() {
	k.state, k.message, k.cause = StateFresh, "", CauseNone
	switch {
	case k.unmanagedLocked():
		if _, err := k.unmanagedTokenLocked(); err != nil {
			k.state, k.message, k.cause = StateNeedsSignIn, "the static token expired", CauseStaticExpired
		}
	case !k.refreshableLocked() && !k.tok.Valid(k.cfg.Clock.Now(), 0):
		k.state, k.message, k.cause = StateNeedsSignIn, "not signed in, or no refresh token stored", CauseNotSignedIn
	case k.interruptedLocked():
		k.state, k.cause = StateNeedsSignIn, CauseRefreshInterrupted
		k.message = "authkeeper stopped while a refresh was in flight, so the authorization server may have " +
			"replaced the stored refresh token already; sending it again could make the server revoke the whole " +
			"grant, so it is not sent: sign in again (the current access token serves until it expires)"
	}
}

// interruptedLocked reports whether the stored record says a refresh was in flight when the process
// that wrote it stopped (keychain.Record.RefreshStarted), and that refresh may have spent the stored
// refresh token. Caller holds k.mu.
//
// Why not refresh anyway: the AS may have rotated the refresh token and answered a process that died
// before saving the answer. Replaying the old one is then a reuse, and a reuse-detecting AS (OAuth 2.1
// §4.3.1, oidc-provider, Atlassian) revokes the whole grant — the still-valid access token included. So
// the access token keeps serving until it expires and the user is asked to sign in once, at leisure.
// The one exception is a grant whose AS was seen not to rotate (Grant.Rotation == RotationFixed): its
// refresh token is still good, and refreshing is safe. A client_credentials grant has no refresh token.
func (k *Keeper) interruptedLocked() bool {
	if k.following() {
		return false // the refresher's own refresh in flight: not this instance's to judge (see Lead)
	}
	if k.unsentLocked(k.marker) {
		return false // this keeper's own start whose write failed, so its refresh was never sent
	}
	return !k.marker.IsZero() && k.tok.RefreshToken != "" && k.grant.Rotation != oauth.RotationFixed &&
		k.grant.GrantType != oauth.GrantClientCredentials
}

// SetRefreshStarted installs the RefreshStarted of the record the keeper was built from (zero when no
// refresh was in flight); call it before Start. See interruptedLocked for what it changes.
func (k *Keeper) SetRefreshStarted(at time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.marker = at
	if k.unreadable == nil {
		k.initialStateLocked()
	}
}

// announceLoadedLocked returns the event that announces a needs-sign-in the keeper was loaded in, once;
// only an interrupted refresh is announced (a server never signed in is not news). Caller holds k.mu.
func (k *Keeper) announceLoadedLocked() Event {
	if k.state != StateNeedsSignIn || k.cause != CauseRefreshInterrupted || k.announced {
		return Event{}
	}
	k.announced = true
	return Event{Kind: EventNeedsSignIn, Trigger: TriggerLoad, Outcome: Outcome(CauseRefreshInterrupted), Message: k.message}
}

// ErrCredentialsUnreadable means the server's stored credentials could not be read: the keychain is
// locked or does not answer. No sign-in is needed: the engine reads them again once it can.
var ErrCredentialsUnreadable = errors.New("its credentials cannot be read from the keychain")

// SetUnreadable records that the stored credentials could not be read because of err. The server is
// degraded, nothing is refreshed, and Token fails with ErrCredentialsUnreadable until Restore.
func (k *Keeper) SetUnreadable(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setUnreadableLocked(err)
	k.stopTimerLocked()
}

func (k *Keeper) setUnreadableLocked(err error) {
	k.unreadable = err
	k.state, k.cause = StateDegraded, CauseKeychainUnreadable
	k.message = "cannot read its credentials from the keychain: " + err.Error()
}

// StillUnreadable records a new cause for credentials that are still unreadable; it does nothing when
// they were installed meanwhile (a sign-in during a slow keychain read wins).
func (k *Keeper) StillUnreadable(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.unreadable == nil || k.closed {
		return
	}
	k.setUnreadableLocked(err)
}

// Unreadable reports whether the stored credentials are still to be read.
func (k *Keeper) Unreadable() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.unreadable != nil
}

// Restore installs the record read once the keychain answers (empty when there is none) and plans
// the next refresh, unless the credentials were not unreadable any more: a sign-in, logout or removal
// since then wins. It reports whether it installed anything.
func (k *Keeper) Restore(s stored) bool {
	k.mu.Lock()
	if k.unreadable == nil || k.closed {
		k.mu.Unlock()
		return false
	}
	k.unreadable = nil
	k.tok, k.grant, k.issued, k.marker, k.challenge = s.tok, s.grant, s.issued, s.refreshStarted, s.challenge
	k.initialStateLocked()
	k.planLocked()
	ev := k.announceLoadedLocked()
	k.mu.Unlock()
	k.emit(Event{Kind: EventRecovered, Trigger: TriggerKeychain, Outcome: OutcomeOK, Message: "read its credentials from the keychain"})
	if ev.Kind != "" {
		k.emit(ev)
	}
	return true
}

// unreadableErrLocked is, while the credentials are unreadable, the error for a caller (and the engine
// is told to read the keychain again); nil otherwise. Caller holds k.mu.
func (k *Keeper) unreadableErrLocked() error {
	if k.unreadable == nil {
		return nil
	}
	if k.cfg.OnUnreadable != nil {
		k.cfg.OnUnreadable()
	}
	return fmt.Errorf("%s: %w: %v", k.cfg.Name, ErrCredentialsUnreadable, k.unreadable)
}

// interruptedSince returns, for a keeper loaded in needs-sign-in because a refresh was interrupted, the
// start of that refresh (see interruptedLocked).
func (k *Keeper) interruptedSince() (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.marker, k.state == StateNeedsSignIn && k.cause == CauseRefreshInterrupted && !k.marker.IsZero()
}

// markAnnounced records that the needs-sign-in the keeper was loaded in was announced already (by an
// earlier process of this installation); call it before Start.
func (k *Keeper) markAnnounced() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.announced = true
}
