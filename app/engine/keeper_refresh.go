package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// startLocked returns the refresh in flight, starting one if there is none. Caller holds k.mu.
func (k *Keeper) startLocked(trigger Trigger) *flight {
	if k.flight != nil {
		return k.flight
	}
	if k.following() {
		return k.askLocked(trigger)
	}
	f := &flight{done: make(chan struct{}), epoch: k.epoch}
	k.flight = f
	k.stopTimerLocked()
	prev := k.state
	k.state = StateRefreshing
	go k.refresh(f, trigger, k.grant, k.tok.RefreshToken, prev)
	return f
}

// refresh runs one refresh-token grant (or, for a client_credentials grant, asks for a new token with
// the client's credentials) on a context of its own, then persists and adopts the result.
func (k *Keeper) refresh(f *flight, trigger Trigger, g oauth.Grant, rt string, prev State) {
	var (
		tok oauth.Token
		err error
		// spent: the request carried a refresh token the AS may have rotated without its answer
		// arriving (see answered), on a grant not known to keep its refresh token.
		spent bool
	)
	// The token's life is counted from before the request: the AS issued it no earlier, and a slow
	// keychain write after the answer must not make the token look younger than it is.
	started := k.cfg.Clock.Now()
	if rt == "" && g.GrantType != oauth.GrantClientCredentials {
		desc := "the authorization server issued no refresh token"
		if g.GrantType == oauth.GrantJWTBearer {
			// Only the user's IdP session can vouch for them again: the ID token was used once and not kept.
			desc += "; a cross-app access grant is renewed with a new ID token from your identity provider"
		}
		err = &oauth.Error{Op: "refresh", Code: "no_refresh_token", Description: desc, Class: oauth.ClassReauth}
	} else {
		if !k.recordStart(f, trigger, started, g, rt, prev) {
			return // not sent: the start could not be recorded (see recordStart)
		}
		rotation := g.Rotation
		ctx, cancel := context.WithTimeout(context.Background(), k.cfg.RefreshTimeout)
		tok, g, err = k.cfg.Auth.Refresh(ctx, g, rt)
		cancel()
		spent = err != nil && rt != "" && rotation != oauth.RotationFixed && !answered(err)
	}
	if err != nil {
		if errors.Is(err, oauth.ErrClientInvalid) && g.ClientID != "" && g.GrantType != oauth.GrantClientCredentials {
			k.reregistered(f.epoch, g)
		}
		k.fail(f, trigger, err, prev, spent)
		return
	}
	// Persist before adopting: the AS has rotated the refresh token, so the stored one is dead. If the
	// save fails the new pair still serves from memory — refusing it would strand the grant, since the
	// old refresh token is spent — and the save is retried.
	k.saveMu.Lock()
	k.mu.Lock()
	stale := f.epoch != k.epoch
	rec := ToRecord(tok, g)
	rec.Challenge, rec.Revision = k.challenge, k.rev
	k.mu.Unlock()
	var perr error
	if !stale {
		_, perr = k.put(rec)
		// A fleet's store refused the write: the record changed since this refresh recorded its start
		// (a sign-in or an import on another instance). That record wins; this answer is dropped like
		// one a local sign-in overtook.
		stale = errors.Is(perr, keychain.ErrConflict)
	}
	k.mu.Lock()
	k.flight = nil
	if stale {
		// A sign-in, logout or removal replaced this grant while the refresh ran: its result must not
		// overwrite what the user did.
		if k.state == StateRefreshing {
			k.state = prev
		}
		f.err = fmt.Errorf("%s: the grant was replaced during the refresh", k.cfg.Name)
		close(f.done)
		k.mu.Unlock()
		k.saveMu.Unlock()
		return
	}
	now := k.cfg.Clock.Now()
	k.tok, k.grant, k.issued, k.marker = tok, g, started, time.Time{} // the save above cleared the marker
	k.state, k.message, k.cause, k.attempt, k.lastErr, k.announced = StateFresh, "", CauseNone, 0, nil, false
	k.last = LastRefresh{At: now, Trigger: trigger, Outcome: OutcomeOK}
	k.unsaved = perr != nil
	if !k.closed {
		k.planLocked()
		if k.unsaved {
			k.armPersistLocked()
		}
	}
	close(f.done)
	k.mu.Unlock()
	k.saveMu.Unlock()

	kind := EventRefreshed
	if trigger == TriggerDeadline {
		kind = EventDeadlineRefresh
	}
	k.emit(Event{Kind: kind, Trigger: trigger, Outcome: OutcomeOK, Scopes: tok.Scopes, Expiry: tok.Expiry})
	if prev == StateDegraded {
		k.emit(Event{Kind: EventRecovered, Trigger: trigger, Outcome: OutcomeOK, Expiry: tok.Expiry})
	}
	if perr != nil {
		k.emit(Event{Kind: EventWarning, Trigger: TriggerPersist, Outcome: OutcomeError,
			Message: "could not save the new token to the keychain; it is kept in memory and the save is retried: " + perr.Error()})
	}
}

// fail records a failed refresh and decides what comes next: from spent (the refresh token may have
// been spent by a refresh whose answer was lost), else from the error's class.
func (k *Keeper) fail(f *flight, trigger Trigger, err error, prev State, spent bool) {
	if answered(err) {
		// The AS answered (or the request never left): the stored refresh token was not spent, so the
		// start the refresh recorded is cleared again. Without an answer it stays: it may be spent.
		k.clearMarker(f.epoch)
	}
	class := OutcomeError
	var oe *oauth.Error
	if errors.As(err, &oe) {
		class = outcomeOf(oe.Class)
	}
	k.mu.Lock()
	now := k.cfg.Clock.Now()
	// Whether the attempt before this one got no answer (a timeout, a lost connection, a gateway's
	// error): on a grant seen not to rotate it was retried, and an AS that started rotating meanwhile
	// takes the retry for a replay.
	var prevErr *oauth.Error
	interrupted := k.lastErr != nil && errors.As(k.lastErr, &prevErr) && !answered(k.lastErr)
	k.last = LastRefresh{At: now, Trigger: trigger, Outcome: class, Error: err.Error()}
	k.lastErr = err
	k.flight = nil
	if f.epoch != k.epoch {
		// The grant was replaced while this refresh ran; its failure says nothing about the new one.
		if k.state == StateRefreshing {
			k.state = prev
		}
		f.err = err
		close(f.done)
		k.mu.Unlock()
		return
	}
	var ev Event
	switch {
	case spent:
		ev = k.unansweredLocked(trigger, err)
	case errors.Is(err, oauth.ErrTransient) || oe == nil:
		// Network trouble, 5xx, 429: keep the current token while it works and retry with backoff.
		var retryAfter time.Duration
		if oe != nil {
			retryAfter = oe.RetryAfter
		}
		delay := k.cfg.Backoff.Delay(k.attempt, retryAfter, k.cfg.Rand())
		k.attempt++
		k.state, k.message, k.cause = StateDegraded, err.Error(), CauseRefreshFailing
		if !k.closed {
			k.armLocked(now.Add(delay), TriggerRetry)
		}
		if prev != StateDegraded {
			ev = Event{Kind: EventDegraded, Trigger: trigger, Outcome: class, Message: err.Error(), Expiry: k.tok.Expiry}
		}
	default:
		// Re-auth needed, an invalid client (its refresh token died with it), or a misconfiguration:
		// only the user can fix these. One event per episode, no retry loop.
		k.state, k.message, k.cause = StateNeedsSignIn, err.Error(), CauseRefreshRefused
		if k.grant.GrantType == oauth.GrantClientCredentials {
			// No browser helps a machine identity: the AS refused its credentials, or the settings.
			k.cause = CauseClientRefused
			k.message = "the authorization server refused the client credentials (" + err.Error() +
				"); check the client id and secret or key, then add the server again"
		}
		if interrupted && errors.Is(err, oauth.ErrReauthRequired) {
			// A refresh whose answer was lost may have been redeemed: strict servers then treat the
			// retry as a replay and revoke the grant. Say so, so the prompt is not a mystery.
			k.message = "the previous refresh was interrupted and the authorization server may have rotated the token already; " + k.message
		}
		kind := EventNeedsSignIn
		if trigger == TriggerProxy401 && k.cause != CauseClientRefused {
			k.state, k.cause, kind = StateRevoked, CauseServerRefused, EventRevoked
		}
		k.stopTimerLocked()
		if !k.announced {
			k.announced = true
			ev = Event{Kind: kind, Trigger: trigger, Outcome: class, Message: k.message}
		}
	}
	f.err = err
	close(f.done)
	k.mu.Unlock()
	if ev.Kind != "" {
		k.emit(ev)
	}
}

// Adopt installs a token pair from an interactive sign-in: it persists the pair, ends any
// needs-sign-in episode, and plans the next refresh. A refresh still in flight for the previous grant
// is discarded when it completes.
func (k *Keeper) Adopt(tok oauth.Token, g oauth.Grant) error {
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	rec := ToRecord(tok, g)
	rec.Challenge = k.challenge // a later sign-in may need it again (see SignInWith)
	rec.Revision = k.rev
	k.mu.Unlock()
	_, perr := k.put(rec)
	if errors.Is(perr, keychain.ErrConflict) {
		// A fleet's record changed since this keeper read it: a sign-in replaces whatever is there.
		perr = k.replace(rec)
	}
	k.mu.Lock()
	now := k.cfg.Clock.Now()
	k.epoch++
	k.unreadable = nil // the sign-in's pair replaces whatever the keychain held
	k.tok, k.grant, k.issued, k.marker = tok, g, now, time.Time{}
	k.state, k.message, k.cause, k.attempt, k.lastErr, k.announced = StateFresh, "", CauseNone, 0, nil, false
	k.last = LastRefresh{At: now, Trigger: TriggerSignIn, Outcome: OutcomeOK}
	k.unsaved = perr != nil
	if !k.closed {
		k.planLocked()
		if k.unsaved {
			k.armPersistLocked()
		}
	}
	k.mu.Unlock()
	k.emit(Event{Kind: EventSignedIn, Trigger: TriggerUser, Outcome: OutcomeOK, Scopes: tok.Scopes, Expiry: tok.Expiry,
		Quirks: g.Quirks, Message: quirkSummary(g)})
	return perr
}

// Grant returns the binding the keeper's tokens were issued under (for sign-in again and revocation).
func (k *Keeper) Grant() oauth.Grant {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.grant
}

// Credentials returns the current token pair and grant, for revocation on removal.
func (k *Keeper) Credentials() (oauth.Token, oauth.Grant) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tok, k.grant
}

func (k *Keeper) emit(e Event) {
	e.Server = k.cfg.Name
	if e.Time.IsZero() {
		e.Time = k.cfg.Clock.Now()
	}
	k.cfg.Emit(e)
}

// ToRecord converts a token pair and its grant into the keychain's record.
func ToRecord(tok oauth.Token, g oauth.Grant) keychain.Record {
	return keychain.Record{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
		Scopes:       tok.Scopes,
		TokenType:    tok.TokenType,
		Binding:      bindingOf(g),
	}
}

// Forget drops the tokens after a logout and returns what it held, for revocation. The keeper then
// waits for a sign-in without announcing an episode (the user asked for it); a refresh in flight is
// discarded when it completes.
func (k *Keeper) Forget() (oauth.Token, oauth.Grant) {
	k.saveMu.Lock() // a save retry in progress finishes first; none starts after
	defer k.saveMu.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, g := k.tok, k.grant
	k.epoch++
	k.unreadable = nil
	k.tok, k.marker = oauth.Token{}, time.Time{}
	k.state, k.message, k.cause, k.announced, k.unsaved = StateNeedsSignIn, "signed out", CauseSignedOut, true, false
	k.stopTimerLocked()
	return tok, g
}

// Idle waits until no refresh is in flight (or ctx ends).
func (k *Keeper) Idle(ctx context.Context) error {
	k.mu.Lock()
	f := k.flight
	k.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reregistered keeps the client the OAuth layer registered after the AS forgot ours, so the next
// sign-in reuses it instead of registering yet another. The stored refresh token is kept: only an
// explicit invalid_grant proves it dead, and the keeper does not use it again without the user.
func (k *Keeper) reregistered(epoch uint64, g oauth.Grant) {
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	if epoch != k.epoch {
		k.mu.Unlock()
		return
	}
	k.grant = g
	rec := k.recordLocked()
	k.mu.Unlock()
	if _, err := k.put(rec); err != nil {
		k.emit(Event{Kind: EventWarning, Trigger: TriggerPersist, Outcome: OutcomeError,
			Message: "could not save the new client registration: " + err.Error()})
	}
}
