package engine

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// Recording a refresh before it is sent (issue 11, point 12): a process killed between the AS's
// rotation and the save of its answer must not leave a record that looks as good as any other, or the
// next start replays the spent refresh token and a reuse-detecting AS revokes the whole grant.

// errReplaced fails a refresh whose grant a sign-in, logout or removal replaced before it was sent.
var errReplaced = errors.New("the grant was replaced before the refresh was sent")

// recordStart saves the current pair with RefreshStarted set before its refresh token is sent
// (persist first), so that a record left by a process that died before saving the answer says so (see
// interruptedLocked); the save of the answer, or clearMarker after an answered failure, clears it.
// This costs one keychain write per refresh of every grant that sends a refresh token — a grant seen
// not to rotate included, since what one refresh showed of an AS can change with the next (a rotation
// policy switched on) — and none for client_credentials grants (no refresh token). It reports whether
// to send the request.
//
// When the keychain refuses that write, the refresh is not sent: the server is degraded, the current
// pair keeps serving, and the refresh is retried with backoff. Only at the hard deadline (shortly
// before expiry, see Policy.Deadline) is it sent unrecorded, because without it the server stops
// working at once; the risk taken then is the one every refresh took before this record existed, and
// the answer is kept in memory (Unsaved) as any pair the keychain refused. The same holds at once when
// the stored pair is already stale (Unsaved): its refresh token was spent by an earlier refresh of this
// process, so holding this one back protects nothing; and for a grant seen not to rotate, which is
// refreshed as usual after a crash whatever the record says (see interruptedLocked).
func (k *Keeper) recordStart(f *flight, trigger Trigger, started time.Time, g oauth.Grant, rt string, prev State) bool {
	if rt == "" {
		return true // nothing a replay could burn: a client_credentials grant has no refresh token
	}
	k.saveMu.Lock()
	k.mu.Lock()
	if f.epoch != k.epoch {
		k.mu.Unlock()
		k.saveMu.Unlock()
		k.fail(f, trigger, errReplaced, prev, false)
		return false
	}
	if k.foreignMarkerLocked(g) {
		// In a fleet, the record holds another instance's refresh start with no answer saved after it:
		// that refresh may have spent this refresh token (see interruptedLocked). Never sent.
		// Its writer may yet withdraw it (withdrawStart): a needs-sign-in is announced only after
		// fleetStartGrace. A token the server refused is announced revoked at once.
		cause := errors.New("another instance of the fleet recorded a refresh of it and saved no answer")
		var ev Event
		if trigger == TriggerProxy401 {
			ev = k.unansweredLocked(trigger, cause)
		} else {
			k.unansweredStateLocked(trigger, cause)
			k.announceLaterLocked(trigger)
		}
		k.flight = nil
		f.err = fmt.Errorf("%s: %w", k.cfg.Name, ErrNeedsSignIn)
		close(f.done)
		k.mu.Unlock()
		k.saveMu.Unlock()
		if ev.Kind != "" {
			k.emit(ev)
		}
		return false
	}
	stale := k.unsaved
	rec := k.recordLocked()
	rec.RefreshStarted = started
	k.noteUnsentLocked(started) // until the write is known to have landed
	deadline := k.deadlineLocked()
	k.mu.Unlock()
	_, err := k.put(rec)
	k.mu.Lock()
	if err == nil {
		// The write saved the current pair too.
		k.marker, k.unsaved, k.saveTries = started, false, 0
		k.markSentLocked(started)
	}
	k.mu.Unlock()
	k.saveMu.Unlock()
	if err == nil || g.Rotation == oauth.RotationFixed {
		if err != nil {
			k.mu.Lock()
			k.markSentLocked(started) // sent all the same: never to be withdrawn (see withdrawStart)
			k.mu.Unlock()
		}
		return true
	}
	if k.cfg.Fleet != nil {
		// In a fleet the recorded start is what keeps two instances from sending the same refresh
		// token: a write refused for a conflict (another writer, or this instance no longer leads) or
		// for want of the store's quorum never lets the refresh go, not even at the deadline. The
		// current token serves until it expires; then callers get a retryable error.
		k.notRecorded(f, trigger, err, time.Time{}, prev)
		return false
	}
	if stale || !started.Before(deadline) {
		return true
	}
	k.notRecorded(f, trigger, err, deadline, prev)
	return false
}

// deadlineLocked is when a refresh of the current token must run whatever holds it back: the plan's
// hard deadline. Caller holds k.mu.
func (k *Keeper) deadlineLocked() time.Time {
	if k.tok.Expiry.IsZero() {
		return time.Time{}
	}
	guard := min(k.cfg.Policy.Deadline, k.tok.Expiry.Sub(k.issued)/10)
	return k.tok.Expiry.Add(-max(guard, 0))
}

// notRecorded degrades the server after the keychain refused to record a refresh's start: the current
// pair serves, and the refresh is retried with backoff, at the latest at deadline.
func (k *Keeper) notRecorded(f *flight, trigger Trigger, err error, deadline time.Time, prev State) {
	k.mu.Lock()
	now := k.cfg.Clock.Now()
	k.flight = nil
	if k.cfg.Fleet != nil {
		// ErrNoRefresher: once the token expires, callers get the fleet's retryable error, not one that
		// blames the authorization server (which was never asked).
		err = fmt.Errorf("the fleet's store did not save that a refresh is starting, so none was sent (the current "+
			"token serves until it expires; the refresh is retried as soon as the store answers): %w: %w", ErrNoRefresher, err)
	} else {
		err = fmt.Errorf("the keychain did not save that a refresh is starting, so none was sent (the current token "+
			"serves; the refresh is retried, at the latest shortly before the token expires): %w", err)
	}
	k.last = LastRefresh{At: now, Trigger: trigger, Outcome: OutcomeKeychain, Error: err.Error()}
	f.err = err
	if f.epoch != k.epoch {
		if k.state == StateRefreshing {
			k.state = prev
		}
		close(f.done)
		k.mu.Unlock()
		return
	}
	k.lastErr = err
	at := now.Add(k.cfg.Backoff.Delay(k.attempt, 0, k.cfg.Rand()))
	if !deadline.IsZero() && deadline.Before(at) {
		at = deadline
	}
	if errors.Is(err, keychain.ErrConflict) {
		// Not a failure of the store: the record moved on (see put's OnConflict). Check again soon.
		k.state = prev
		if k.state == StateRefreshing {
			k.state = StateFresh
		}
		if !k.closed {
			// A schedule, not a retry: should this instance have become a follower meanwhile, it then
			// waits for the refresher's record instead of asking at once (see dueFollowingLocked).
			k.armLocked(now.Add(MinRefreshGap), TriggerSchedule)
		}
		close(f.done)
		k.mu.Unlock()
		return
	}
	if k.cfg.Fleet != nil {
		// A retry costs one write to the store, never a request to the AS: keep it short, so that the
		// refresh follows the store's recovery closely.
		at = now.Add(min(at.Sub(now), fleetStoreRetry))
	}
	k.attempt++
	k.state, k.message, k.cause = StateDegraded, err.Error(), CauseRefreshNotRecorded
	if !k.closed {
		k.armLocked(at, TriggerRetry)
	}
	var ev Event
	if prev != StateDegraded {
		ev = Event{Kind: EventDegraded, Trigger: trigger, Outcome: OutcomeKeychain, Message: err.Error(), Expiry: k.tok.Expiry}
	}
	close(f.done)
	k.mu.Unlock()
	if ev.Kind != "" {
		k.emit(ev)
	}
}

// clearMarker saves the current pair without RefreshStarted after a refresh failed in a way that
// shows its refresh token unspent; if the keychain refuses, the save is retried like any unsaved pair.
func (k *Keeper) clearMarker(epoch uint64) {
	k.saveWithoutMarker(func() bool { return epoch == k.epoch && !k.marker.IsZero() })
}

// saveWithoutMarker saves the current pair without RefreshStarted if ok, called with saveMu and k.mu
// held, allows it; a refused save is retried like any unsaved pair.
func (k *Keeper) saveWithoutMarker(ok func() bool) {
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	if !ok() {
		k.mu.Unlock()
		return
	}
	k.marker = time.Time{}
	rec := k.recordLocked()
	k.mu.Unlock()
	k.saveOrRetry(rec)
}

// answered reports whether a failed refresh shows that the refresh token was not spent: the AS itself
// refused — any 4xx (429 included), a 500, 501 or 503, or a 2xx carrying an OAuth error (Slack, GitHub)
// — or the connection was never made (refused, DNS). Everything else leaves it unknown, and the token
// possibly rotated at the AS: a timeout, a connection lost after the request left, a 2xx that could not
// be read, and the 502, 504 and 520–527 of a gateway in front of the AS, which it may send after the
// AS answered (an origin timeout, a reset during the answer).
func answered(err error) bool {
	var oe *oauth.Error
	if errors.As(err, &oe) && oe.Status != 0 {
		switch s := oe.Status; {
		case gatewayStatus(s):
			return false
		case s >= 400:
			return true
		default:
			return oe.Code != ""
		}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// gatewayStatus reports the statuses a proxy or CDN in front of the AS answers with when the origin's
// answer did not come through: 502 Bad Gateway, 504 Gateway Timeout, and Cloudflare's 520–527 (the
// origin reset the connection, timed out, sent an invalid answer, …).
func gatewayStatus(s int) bool {
	return s == http.StatusBadGateway || s == http.StatusGatewayTimeout || (s >= 520 && s <= 527)
}

// unansweredLocked ends a refresh whose answer was lost on a grant that may rotate (see answered): the
// AS may have rotated the refresh token already, and on an AS with reuse detection sending it again
// revokes the whole grant, the still-valid access token included. So it is not sent again — the same
// decision as after a crash mid-refresh (interruptedLocked): the current access token keeps serving
// until it expires, and one needs-sign-in is announced. A refresh forced by the server's 401 leaves
// the server revoked instead, as any refresh that fails there: its token was refused. Caller holds k.mu;
// it returns the event to emit after unlocking.
func (k *Keeper) unansweredLocked(trigger Trigger, err error) Event {
	kind := k.unansweredStateLocked(trigger, err)
	if k.announced {
		return Event{}
	}
	k.announced = true
	return Event{Kind: kind, Trigger: trigger, Outcome: Outcome(CauseRefreshInterrupted), Message: k.message}
}

// unansweredStateLocked is unansweredLocked without the announcement: it sets the state and returns
// the kind of event that announces it. Caller holds k.mu.
func (k *Keeper) unansweredStateLocked(trigger Trigger, err error) EventKind {
	k.state, k.cause = StateNeedsSignIn, CauseRefreshInterrupted
	k.message = "a refresh got no answer (" + err.Error() + "), so the authorization server may have replaced " +
		"the refresh token already; sending it again could make the server revoke the whole grant, so it is not " +
		"sent: sign in again (the current access token serves until it expires)"
	kind := EventNeedsSignIn
	if trigger == TriggerProxy401 {
		k.state, kind = StateRevoked, EventRevoked
	}
	k.stopTimerLocked()
	return kind
}

// recordLocked is the keychain record of the current pair, with the refresh start the keychain is to
// hold for it, as the successor of the revision the keeper holds (see put). Caller holds k.mu.
func (k *Keeper) recordLocked() keychain.Record {
	rec := ToRecord(k.tok, k.grant)
	rec.RefreshStarted, rec.Challenge, rec.Revision = k.marker, k.challenge, k.rev
	return rec
}

// Renewable reports whether a forced refresh can renew the token: a grant the keeper manages, with a
// refresh token or client credentials. A static token, or one without a refresh token, ends when a
// server refuses it (see Rejected).
func (k *Keeper) Renewable() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.renewableLocked()
}

// renewableLocked is Renewable. Caller holds k.mu.
func (k *Keeper) renewableLocked() bool { return !k.unmanagedLocked() && k.refreshableLocked() }

// refreshableLocked reports whether the grant can be renewed without the user: it has a refresh
// token, or it is a client_credentials grant. Caller holds k.mu.
func (k *Keeper) refreshableLocked() bool {
	return k.tok.RefreshToken != "" || k.grant.GrantType == oauth.GrantClientCredentials
}

// tokenRefusedLocked ends a token that cannot be renewed after the server refused it: needs sign-in,
// announced once, and the token is not handed out again. Caller holds k.mu; it returns the event to
// emit after unlocking.
func (k *Keeper) tokenRefusedLocked() Event {
	k.state, k.cause = StateNeedsSignIn, CauseTokenRefused
	k.message = "the server refused the token, which has no refresh token to renew it: sign in again"
	k.stopTimerLocked()
	if k.announced {
		return Event{}
	}
	k.announced = true
	return Event{Kind: EventNeedsSignIn, Trigger: TriggerProxy401, Outcome: Outcome(CauseTokenRefused), Message: k.message}
}
