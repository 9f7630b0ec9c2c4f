package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// What callers ask of a keeper: a token, a refresh now, and what to do when the server refused one.

// Token returns a valid access token, refreshing first when the current one is within the skew of
// its expiry. ctx bounds only the wait, never the refresh itself. It never refreshes a grant the AS
// has declared dead, nor ahead of a backoff the AS asked for (Retry-After).
func (k *Keeper) Token(ctx context.Context) (string, error) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return "", fmt.Errorf("%s: %w", k.cfg.Name, errClosed)
	}
	if err := k.unreadableErrLocked(); err != nil {
		k.mu.Unlock()
		return "", err
	}
	if k.unmanagedLocked() {
		defer k.mu.Unlock()
		return k.unmanagedTokenLocked()
	}
	now := k.cfg.Clock.Now()
	switch k.state {
	case StateRevoked, StateDisabled:
		// The server refused this token: handing it out again only repeats the refusal.
		err := k.stateErrLocked()
		k.mu.Unlock()
		return "", err
	case StateNeedsSignIn, StateDegraded:
		// No refresh now: the grant is dead, or a retry is scheduled. A still-valid token serves, unless
		// the server already refused it (a token without expiry stays "valid" locally forever).
		if k.tok.Valid(now, 0) && k.cause != CauseTokenRefused {
			t := k.tok.AccessToken
			k.mu.Unlock()
			return t, nil
		}
		if k.state == StateNeedsSignIn || now.Before(k.next) {
			err := k.stateErrLocked()
			k.mu.Unlock()
			return "", err
		}
	}
	// The skew scales down for short-lived tokens: a 30 s margin on a 20 s token would refresh on
	// every call. It is never negative; a token without expiry (zero Expiry) gets none.
	skew := max(0, min(k.cfg.Skew, k.tok.Expiry.Sub(k.issued)/4))
	if k.tok.Valid(now, skew) {
		t := k.tok.AccessToken
		k.mu.Unlock()
		return t, nil
	}
	f := k.startLocked(TriggerExpiring)
	k.mu.Unlock()
	if err := wait(ctx, f); err != nil {
		// The refresh failed, but a token inside the skew is still better than none.
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.tok.Valid(k.cfg.Clock.Now(), 0) {
			return k.tok.AccessToken, nil
		}
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.tok.Valid(k.cfg.Clock.Now(), 0) {
		return "", fmt.Errorf("%s: the authorization server issued an already expired token", k.cfg.Name)
	}
	return k.tok.AccessToken, nil
}

// ForceRefresh refreshes now, or joins the refresh already in flight: fifty concurrent callers cause
// one token request. It returns when that refresh has finished (or ctx ends). A grant the AS declared
// dead is not refreshed again (its refresh token would only be replayed): sign in instead.
func (k *Keeper) ForceRefresh(ctx context.Context, reason Trigger) error {
	k.mu.Lock()
	switch {
	case k.closed:
		k.mu.Unlock()
		return fmt.Errorf("%s: %w", k.cfg.Name, errClosed)
	case k.unreadable != nil:
		err := k.unreadableErrLocked()
		k.mu.Unlock()
		return err
	case k.unmanagedLocked():
		k.mu.Unlock()
		return fmt.Errorf("%s: a static token or a server without auth has nothing to refresh", k.cfg.Name)
	case k.state == StateDisabled, k.state == StateNeedsSignIn, k.state == StateRevoked:
		err := k.stateErrLocked()
		k.mu.Unlock()
		return err
	case !k.refreshableLocked() && k.tok.Valid(k.cfg.Clock.Now(), 0):
		// A token without a refresh token (GitHub OAuth apps' never expire) serves until it is refused;
		// "refreshing" it could only fail and throw it away.
		k.mu.Unlock()
		return fmt.Errorf("%s: %w", k.cfg.Name, ErrNothingToRefresh)
	}
	f := k.startLocked(reason)
	k.mu.Unlock()
	return wait(ctx, f)
}

// Rejected tells the keeper that the server refused token (a 401 on a token we believed valid). If
// the keeper has moved on to a newer token already, it returns at once; otherwise it forces one
// refresh, and a refresh that then fails for want of a grant marks the server revoked.
func (k *Keeper) Rejected(ctx context.Context, token string) error {
	return k.rejected(ctx, token, TriggerProxy401)
}

// RejectedWeakly is Rejected for weaker evidence: the server's answer said that authentication
// failed (a JSON-RPC error in a 200 body), which a server whose own downstream credential is bad says
// with any token. It forces one refresh as Rejected does, but nothing is concluded from the server's
// word alone: a token no refresh can renew is left as it is (nil), so is the token of a fleet
// instance that does not refresh the grant (nil), and a refresh the authorization server refuses
// ends in needs-sign-in, as a scheduled one would, never in revoked.
func (k *Keeper) RejectedWeakly(ctx context.Context, token string) error {
	return k.rejected(ctx, token, TriggerProxyWeak)
}

// rejected is Rejected (trigger TriggerProxy401) and RejectedWeakly (TriggerProxyWeak).
func (k *Keeper) rejected(ctx context.Context, token string, trigger Trigger) error {
	weak := trigger == TriggerProxyWeak
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return fmt.Errorf("%s: %w", k.cfg.Name, errClosed)
	}
	if err := k.unreadableErrLocked(); err != nil {
		k.mu.Unlock()
		return err
	}
	if weak && (!k.renewableLocked() || k.following()) {
		// Nothing to put to the test, and weak evidence ends nothing. In a fleet only the refresher
		// acts on it: each instance's proxy remembers only the token its own weak refresh produced
		// (see proxy.weakRefresh), so asks from every instance would each refresh the token another's
		// refresh produced, one refresh per call across the fleet. The refresher sees the same server
		// and refreshes when the evidence reaches it there.
		k.mu.Unlock()
		return nil
	}
	if k.unmanagedLocked() {
		// Nothing to refresh: the server refused the user's token, and only the user can replace it.
		var ev Event
		if k.grant.Registration == RegistrationStaticToken && token == k.tok.AccessToken {
			k.state, k.message, k.cause = StateRevoked, "the server refused the static token", CauseServerRefused
			if !k.announced {
				k.announced = true
				ev = Event{Kind: EventRevoked, Trigger: TriggerProxy401, Outcome: OutcomeRefused, Message: k.message}
			}
		}
		err := k.stateErrLocked()
		k.mu.Unlock()
		if ev.Kind != "" {
			k.emit(ev)
		}
		return err
	}
	now := k.cfg.Clock.Now()
	switch {
	case token != k.tok.AccessToken && k.tok.Valid(now, 0):
		k.mu.Unlock()
		return nil // someone already refreshed: the caller retries with the new token
	case k.state == StateNeedsSignIn || k.state == StateRevoked || k.state == StateDisabled:
		err := k.stateErrLocked()
		k.mu.Unlock()
		return err
	case k.state == StateDegraded && now.Before(k.next):
		// A retry is scheduled (backoff, Retry-After): a 401 on the expiring token must neither jump
		// ahead of it nor escalate it, or recovery after an outage waits minutes longer.
		err := k.stateErrLocked()
		k.mu.Unlock()
		return err
	case !k.refreshableLocked():
		// Nothing to renew it with (a token without expiry and without a refresh token): the server's
		// refusal is the token's end. One needs-sign-in, no refresh attempt, and the token is not handed
		// out again.
		ev := k.tokenRefusedLocked()
		err := k.stateErrLocked()
		k.mu.Unlock()
		if ev.Kind != "" {
			k.emit(ev)
		}
		return err
	}
	// A server that refuses every new token (a wrong audience, say) costs one refresh: the proxy's
	// replay with the new token is refused too and RefusedAfterRefresh marks the server revoked.
	f := k.startLocked(trigger)
	k.mu.Unlock()
	return wait(ctx, f)
}

func wait(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stateErrLocked is the error Token returns in a state that needs the user.
func (k *Keeper) stateErrLocked() error {
	switch k.state {
	case StateDisabled:
		return fmt.Errorf("%s is disabled", k.cfg.Name)
	case StateDegraded:
		if errors.Is(k.lastErr, ErrNoRefresher) {
			return fmt.Errorf("%s: the token expired (retrying at %s): %w", k.cfg.Name, k.next.Format(time.TimeOnly), k.lastErr)
		}
		return fmt.Errorf("%s: the token expired and the authorization server could not be reached (retrying at %s): %w",
			k.cfg.Name, k.next.Format(time.TimeOnly), k.lastErr)
	case StateRevoked:
		return fmt.Errorf("%s: the server revoked access: %w", k.cfg.Name, ErrNeedsSignIn)
	}
	return fmt.Errorf("%s: %w", k.cfg.Name, ErrNeedsSignIn)
}
