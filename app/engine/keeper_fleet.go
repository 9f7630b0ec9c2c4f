package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// A keeper in a fleet (issue 15): several authkeeper instances share one grant through a store that
// elects one refresher per grant (app/fleet over etcd). Only the elected instance refreshes; it
// records the start of every refresh with a compare-and-swap write fenced by its election (so at
// most one instance can ever pass that gate for a given stored refresh token), then persists the
// answer before adopting it, as on one machine. The others adopt every record the refresher writes
// (Observe) and, when their token nears expiry or the MCP server refuses it, ask the refresher for a
// refresh (FleetGate.Ask) instead of refreshing themselves.

// FleetGate is the part of the fleet a keeper needs.
type FleetGate interface {
	// Leading reports whether this instance is the grant's elected refresher now.
	Leading(name string) bool
	// Ask asks the grant's refresher for a refresh of the token with the given digest (see
	// TokenDigest); reason is the trigger that made this instance ask.
	Ask(name, digest, reason string) error
}

// ErrNoRefresher means no instance of the fleet refreshed a token this instance asked for in time:
// the refresher is changing hands, or the fleet's store has lost its quorum. Retry shortly; the token
// still serves while it is valid.
var ErrNoRefresher = errors.New("no instance of the fleet refreshed the token in time (the refresher is changing, " +
	"or the credential store has lost its quorum); retry shortly")

// TokenDigest names a token without revealing it: the first 16 hex digits of its SHA-256. The fleet
// sends it to the refresher so that a request about a token the refresher has already replaced is
// ignored.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// following reports whether this keeper is in a fleet and not its grant's refresher. Caller holds k.mu.
func (k *Keeper) following() bool {
	return k.cfg.Fleet != nil && !k.cfg.Fleet.Leading(k.cfg.Name)
}

// fleetStoreRetry is the longest wait before a refresher tries again to record a refresh's start that
// the fleet's store refused (no quorum): a write to the store, never a request to the AS.
const fleetStoreRetry = 3 * time.Second

// maxAskWait bounds a follower's wait for the refresher's answer: an agent's call waits that long at
// most before it gets a retryable error (the refresher may be degraded itself, retrying with backoff).
const maxAskWait = 10 * time.Second

// askLocked is startLocked for a follower: it asks the refresher instead of refreshing, and the
// flight ends when a newer record arrives (Observe) or after maxAskWait. Caller holds k.mu.
func (k *Keeper) askLocked(trigger Trigger) *flight {
	f := &flight{done: make(chan struct{}), epoch: k.epoch, ask: true}
	k.flight = f
	digest := TokenDigest(k.tok.AccessToken)
	t := k.cfg.Clock.AfterFunc(min(k.cfg.RefreshTimeout, maxAskWait), func() { k.endAsk(f, ErrNoRefresher) })
	go func() {
		if err := k.cfg.Fleet.Ask(k.cfg.Name, digest, string(trigger)); err != nil {
			t.Stop()
			k.endAsk(f, fmt.Errorf("%w: %w", ErrNoRefresher, err))
		}
	}()
	return f
}

// endAsk ends a follower's flight that no newer record answered.
func (k *Keeper) endAsk(f *flight, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.flight != f {
		return
	}
	k.flight = nil
	f.err = fmt.Errorf("%s: %w", k.cfg.Name, err)
	close(f.done)
	if !k.closed && k.state != StateNeedsSignIn && k.state != StateRevoked && k.state != StateDisabled {
		k.armLocked(k.cfg.Clock.Now().Add(k.cfg.Backoff.Delay(0, 0, k.cfg.Rand())), TriggerRetry)
	}
	if k.cfg.OnConflict != nil {
		// The refresher may have written a record this instance missed (a read that failed): read it
		// again, so the next ask names the current token (the refresher ignores asks about old ones).
		go k.cfg.OnConflict()
	}
}

// dueFollowing handles a follower's timer: nothing before the plan's deadline (the refresher refreshes
// at the planned time and this keeper adopts its record); at the deadline, ask the refresher, which
// also wakes a fleet whose refresher stalled. Caller holds k.mu; it reports whether it handled the call.
func (k *Keeper) dueFollowingLocked(trigger Trigger) bool {
	if !k.following() {
		return false
	}
	if now := k.cfg.Clock.Now(); now.Before(k.plan.Deadline) && trigger != TriggerRetry {
		k.armLocked(k.plan.Deadline, TriggerDeadline)
		return true
	}
	k.askLocked(trigger)
	return true
}

// Observe adopts the record another instance of the fleet wrote (its revision rev): a refreshed pair,
// a sign-in, an import, or the start of a refresh. A record no newer than the keeper's is ignored.
func (k *Keeper) Observe(s stored, rev uint64) {
	k.mu.Lock()
	if k.closed || rev <= k.rev {
		k.mu.Unlock()
		return
	}
	if k.unsaved && !s.refreshStarted.IsZero() && s.refreshStarted.Equal(k.sent) {
		// The record of this keeper's own refresh, whose answer — the pair in memory, the only live
		// one — could not be saved yet: keep it, and let the save retry replace that record.
		k.rev = rev
		k.mu.Unlock()
		return
	}
	k.rev = rev
	k.marker = s.refreshStarted
	if k.unreadable == nil && s.tok.AccessToken == k.tok.AccessToken && s.tok.RefreshToken == k.tok.RefreshToken {
		// The same pair (the refresher recorded a refresh's start, or cleared it): only the marker
		// changed, which matters only if this instance takes the grant over (see Lead) — or this
		// instance wrote it, or its withdrawal ends a needs-sign-in it caused.
		own := !k.marker.IsZero() && k.unsentLocked(k.marker)
		ev := k.startWithdrawnLocked()
		k.mu.Unlock()
		if own {
			go k.withdrawStart(s.refreshStarted, rev)
		}
		if ev.Kind != "" {
			k.emit(ev)
		}
		return
	}
	k.epoch++ // a refresh of this keeper still in flight is now stale: its write would conflict anyway
	k.unreadable, k.unsaved = nil, false
	k.tok, k.grant, k.issued, k.challenge = s.tok, s.grant, s.issued, s.challenge
	k.initialStateLocked()
	if k.state == StateFresh {
		k.attempt, k.lastErr, k.announced = 0, nil, false
	}
	k.announceLaterLocked(TriggerFleet) // a pair that came with another instance's start, to the refresher
	k.last = LastRefresh{At: k.cfg.Clock.Now(), Trigger: TriggerFleet, Outcome: OutcomeOK}
	if f := k.flight; f != nil && f.ask {
		k.flight = nil
		close(f.done)
	}
	k.planLocked()
	state, expiry := k.state, k.tok.Expiry
	k.mu.Unlock()
	if state == StateFresh {
		k.emit(Event{Kind: EventAdopted, Trigger: TriggerFleet, Outcome: OutcomeOK, Expiry: expiry})
	}
}

// Dropped forgets the pair after another instance of the fleet deleted the record (a logout there).
func (k *Keeper) Dropped() {
	k.Forget()
}

// Lead is called when this instance becomes the grant's refresher, with the record as stored now:
// the keeper adopts it when it is newer, then plans the next refresh from it. A record carrying a
// refresh's start (the previous refresher died between recording a refresh and saving its answer) is
// not refreshed: its refresh token may have been spent (see interruptedLocked).
func (k *Keeper) Lead(s stored, rev uint64) {
	k.Observe(s, rev)
	k.mu.Lock()
	if f := k.flight; f != nil && f.ask {
		// This instance asked the refresher it now replaces: nobody will answer that ask. Its waiters
		// get the fleet's retryable error; the refresh below serves the next call.
		k.flight = nil
		f.err = fmt.Errorf("%s: %w", k.cfg.Name, ErrNoRefresher)
		close(f.done)
	}
	if k.closed || k.unmanagedLocked() || k.flight != nil {
		k.mu.Unlock()
		return
	}
	storeWasDown := k.state == StateDegraded && k.cause == CauseRefreshNotRecorded
	if k.state == StateFresh || k.state == StateDegraded || k.state == StateDeferred {
		k.initialStateLocked()
		k.announceLaterLocked(TriggerFleet) // the start may be withdrawn yet (see withdrawStart)
	}
	switch {
	case storeWasDown && k.state == StateFresh:
		// The store refused the refresh's start while it had no quorum; it answers again now that
		// this instance could win an election. Refresh now, not after the backoff that grew meanwhile.
		k.attempt = 0
		k.armLocked(k.cfg.Clock.Now(), TriggerRetry)
	default:
		k.planLocked()
	}
	k.mu.Unlock()
}

// Follow is called when this instance stops being the grant's refresher: a planned refresh turns into
// a wait for the new refresher's record (see dueFollowingLocked).
func (k *Keeper) Follow() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.closed && k.flight == nil && !k.next.IsZero() {
		k.armLocked(k.next, k.trigger)
	}
}

// Asked is called on the refresher when another instance asks for a refresh of the token with the
// given digest. A request about a token already replaced is ignored: the asker adopts the newer
// record through its watch. So is one the keeper's state forbids — a grant that needs a sign-in, a
// closed keeper, a backoff the authorization server asked for — exactly as for a local caller. A
// refused token (reason proxy-401) is handled as a refusal seen here.
func (k *Keeper) Asked(digest, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.RefreshTimeout+5*time.Second)
	defer cancel()
	k.mu.Lock()
	current := k.tok.AccessToken
	now := k.cfg.Clock.Now()
	refuse := k.closed || k.unreadable != nil || current == "" || TokenDigest(current) != digest || k.flight != nil ||
		k.unmanagedLocked() || k.state == StateNeedsSignIn || k.state == StateRevoked || k.state == StateDisabled ||
		(k.state == StateDegraded && now.Before(k.next)) || (!k.refreshableLocked() && k.tok.Valid(now, 0))
	if refuse {
		k.mu.Unlock()
		return
	}
	if Trigger(reason) == TriggerProxy401 {
		k.mu.Unlock()
		_ = k.Rejected(ctx, current) // the outcome reaches the asker as a record, or as its timeout
		return
	}
	f := k.startLocked(TriggerFleet) // in the same lock as the checks: the pair cannot change between
	k.mu.Unlock()
	_ = wait(ctx, f)
}

// fleetStartGrace is how long an instance that finds another instance's refresh start with no answer
// waits before it asks the user to sign in. The start may be one whose write reported a failure (etcd
// answers "request timed out" when it loses its quorum) and yet landed: its writer never sent that
// refresh, reads the record back after the timeout (put calls OnConflict; the watch skips an
// instance's own writes), finds its start, and withdraws it (withdrawStart) as soon as the store takes
// a write, retried every fleetStoreRetry. Until then the grant is not refreshed either way.
const fleetStartGrace = 4 * fleetStoreRetry

// announceLaterLocked announces, after fleetStartGrace, the needs-sign-in that another instance's
// refresh start without an answer put the keeper in, unless that start was withdrawn, or anything
// else replaced the pair or the state, meanwhile (what replaced it announces itself). trigger is what
// led the keeper to the start. Caller holds k.mu.
func (k *Keeper) announceLaterLocked(trigger Trigger) {
	if k.state != StateNeedsSignIn || k.cause != CauseRefreshInterrupted || k.announced {
		return
	}
	marker, epoch := k.marker, k.epoch
	k.cfg.Clock.AfterFunc(fleetStartGrace, func() {
		k.mu.Lock()
		var ev Event
		if !k.closed && k.epoch == epoch && k.marker.Equal(marker) && !k.announced &&
			k.state == StateNeedsSignIn && k.cause == CauseRefreshInterrupted {
			k.announced = true
			ev = Event{Kind: EventNeedsSignIn, Trigger: trigger, Outcome: Outcome(CauseRefreshInterrupted), Message: k.message}
		}
		k.mu.Unlock()
		if ev.Kind != "" {
			k.emit(ev)
		}
	})
}

// withdrawStart removes from the fleet's record a refresh start of this keeper's that landed although
// its write reported a failure: its refresh was never sent, so the stored refresh token is unspent,
// but any other instance would take the start for a refresh whose answer was lost and ask for a
// sign-in (see foreignMarkerLocked). rev is the revision that carried the start; the write is a
// compare-and-swap on it, so a newer record (another instance's refresh) is never overwritten.
func (k *Keeper) withdrawStart(at time.Time, rev uint64) {
	// saveWithoutMarker holds saveMu: a write of this keeper's still in progress finishes first, and if
	// it succeeded its refresh went out (markSentLocked took the start off unsent).
	k.saveWithoutMarker(func() bool { return !k.closed && k.rev == rev && k.marker.Equal(at) && k.unsentLocked(at) })
}

// startWithdrawnLocked ends the needs-sign-in (or, after the server refused the token, the revoked
// state) that a refresh start with no answer caused, once the record shows the same pair without it:
// its writer withdrew it (withdrawStart), so the refresh token is unspent. It returns the event to
// emit after unlocking. Caller holds k.mu.
func (k *Keeper) startWithdrawnLocked() Event {
	if !k.marker.IsZero() || (k.state != StateNeedsSignIn && k.state != StateRevoked) || k.cause != CauseRefreshInterrupted {
		return Event{}
	}
	k.initialStateLocked()
	if k.state != StateFresh {
		return Event{}
	}
	k.attempt, k.lastErr, k.announced = 0, nil, false
	k.planLocked()
	return Event{Kind: EventRecovered, Trigger: TriggerFleet, Outcome: OutcomeOK, Expiry: k.tok.Expiry,
		Message: "the instance of the fleet that recorded a refresh start withdrew it: that refresh was never sent"}
}

// foreignMarkerLocked reports whether, in a fleet, the current pair's record carries a refresh start
// that this keeper did not write: another instance recorded a refresh of this refresh token and saved
// no answer, so the token may be spent. A grant seen not to rotate is exempt. Caller holds k.mu.
func (k *Keeper) foreignMarkerLocked(g oauth.Grant) bool {
	return k.cfg.Fleet != nil && !k.marker.IsZero() && !k.unsentLocked(k.marker) && g.Rotation != oauth.RotationFixed
}

// maxUnsent bounds the refresh starts remembered as never sent. At most one of a run of failed writes
// can land (each retry's compare-and-swap fails once an earlier one has landed), but it may be any of
// them: retried every fleetStoreRetry, 64 cover an outage of three minutes. A start of this keeper's
// forgotten and landing later is taken for another instance's: safe, at the price of a sign-in.
const maxUnsent = 64

// noteUnsentLocked remembers a refresh start about to be written. Caller holds k.mu.
func (k *Keeper) noteUnsentLocked(at time.Time) {
	if k.cfg.Fleet == nil {
		return
	}
	k.unsent = append(k.unsent, at)
	if len(k.unsent) > maxUnsent {
		k.unsent = k.unsent[len(k.unsent)-maxUnsent:]
	}
}

// markSentLocked records that the write of the refresh start at landed and its refresh is being sent.
// Caller holds k.mu.
func (k *Keeper) markSentLocked(at time.Time) {
	if k.cfg.Fleet == nil {
		return
	}
	k.unsent = slices.DeleteFunc(k.unsent, at.Equal)
	k.sent = at
}

// unsentLocked reports whether at is a refresh start this keeper recorded and never sent. Caller holds k.mu.
func (k *Keeper) unsentLocked(at time.Time) bool {
	return slices.ContainsFunc(k.unsent, at.Equal)
}

// put writes rec as the successor of rec.Revision (a store shared by a fleet compares it; the others
// ignore it) and records the revision written. The caller sets rec.Revision to the keeper's revision in
// the same hold of k.mu that built rec (recordLocked does), so that a record adopted in between
// (Observe) makes the write conflict rather than be overwritten by a pair older than itself. Caller
// holds saveMu, not mu.
func (k *Keeper) put(rec keychain.Record) (keychain.Record, error) {
	out, err := k.cfg.Store.Put(k.cfg.Name, rec)
	if err != nil {
		if (errors.Is(err, keychain.ErrConflict) || (k.cfg.Fleet != nil && errors.Is(err, keychain.ErrUnavailable))) &&
			k.cfg.OnConflict != nil {
			// Read the record again (Observe) instead of retrying this write blindly: it changed
			// meanwhile, or — a fleet's store that timed out — this write may have landed after all.
			k.cfg.OnConflict()
		}
		return out, err
	}
	k.mu.Lock()
	if out.Revision > k.rev {
		k.rev = out.Revision
	}
	k.mu.Unlock()
	return out, nil
}

// SetRevision installs the revision of the record the keeper was built from; call it before Start.
func (k *Keeper) SetRevision(rev uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rev = rev
}

// replace writes rec over whatever the store holds now: a sign-in's pair wins over any record another
// instance of the fleet wrote since this keeper read one. Caller holds saveMu, not mu.
func (k *Keeper) replace(rec keychain.Record) error {
	g, ok := k.cfg.Store.(interface {
		Get(name string) (keychain.Record, error)
	})
	if !ok {
		return keychain.ErrConflict
	}
	cur, err := g.Get(k.cfg.Name)
	if err != nil && !errors.Is(err, keychain.ErrNotFound) {
		return err
	}
	k.mu.Lock()
	k.rev = cur.Revision
	k.mu.Unlock()
	rec.Revision = cur.Revision
	_, err = k.put(rec)
	return err
}
