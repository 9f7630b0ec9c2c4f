package engine

import (
	"errors"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
)

// planLocked plans the next refresh of the current token and arms the timer. Caller holds k.mu.
func (k *Keeper) planLocked() {
	if k.unreadable != nil {
		k.stopTimerLocked() // the refresh token is in the keychain; Restore plans again
		return
	}
	if k.unmanagedLocked() {
		k.planUnmanagedLocked()
		return
	}
	switch k.state {
	case StateNeedsSignIn, StateRevoked, StateDisabled:
		k.stopTimerLocked()
		return
	}
	if k.tok.Valid(k.cfg.Clock.Now(), 0) && k.tok.Expiry.IsZero() {
		// No expiry (GitHub OAuth apps): nothing to plan; the token serves until the server refuses it.
		k.plan = Plan{}
		k.stopTimerLocked()
		return
	}
	k.plan = k.cfg.Policy.PlanRefresh(k.issued, k.tok.Expiry, k.cfg.Rand())
	at := k.plan.At
	// A token that arrives already (nearly) expired — clock skew, a misbehaving AS — must not turn the
	// scheduler into a tight loop against the AS: scheduled refreshes keep a floor between them.
	if floor := k.last.At.Add(MinRefreshGap); k.last.Outcome == OutcomeOK && at.Before(floor) {
		at = floor
	}
	k.armLocked(at, TriggerSchedule)
}

// MinRefreshGap is the least time between a successful refresh and the next scheduled one.
const MinRefreshGap = 2 * time.Second

// armLocked (re)arms the keeper's one timer for at. Caller holds k.mu.
func (k *Keeper) armLocked(at time.Time, trigger Trigger) {
	k.stopTimerLocked()
	k.next, k.trigger = at, trigger
	gen := k.gen
	k.timer = k.cfg.Clock.AfterFunc(max(at.Sub(k.cfg.Clock.Now()), 0), func() { k.due(gen) })
}

// stopTimerLocked cancels the timer; a callback already running sees a stale generation. Caller holds k.mu.
func (k *Keeper) stopTimerLocked() {
	k.gen++
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
	k.next, k.trigger = time.Time{}, ""
}

// due runs when the timer fires: refresh, or defer while an agent turn is busy and the hard deadline
// has not come.
func (k *Keeper) due(gen uint64) {
	k.mu.Lock()
	if gen != k.gen || k.closed || k.flight != nil {
		k.mu.Unlock()
		return
	}
	trigger := k.trigger
	now := k.cfg.Clock.Now()
	if k.unmanagedLocked() {
		ev := k.staticExpiredLocked()
		k.mu.Unlock()
		if ev.Kind != "" {
			k.emit(ev)
		}
		return
	}
	if k.dueFollowingLocked(trigger) {
		k.mu.Unlock()
		return
	}
	if k.state != StateDegraded && k.cfg.Busy.Active(k.cfg.Name) {
		if now.Before(k.plan.Deadline) {
			first := k.state != StateDeferred
			k.state = StateDeferred
			k.armLocked(k.plan.Deadline, TriggerDeadline)
			expiry := k.tok.Expiry
			k.mu.Unlock()
			if first {
				k.emit(Event{Kind: EventDeferred, Trigger: trigger, Expiry: expiry})
			}
			return
		}
		trigger = TriggerDeadline
	}
	k.startLocked(trigger)
	k.mu.Unlock()
}

// Resume runs a deferred refresh after delay once nothing keeps the server busy. The engine calls it,
// staggered across servers, whenever a busy period may have ended.
// It reports whether it scheduled a refresh.
func (k *Keeper) Resume(delay time.Duration) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state != StateDeferred || k.flight != nil || k.closed || k.cfg.Busy.Active(k.cfg.Name) {
		return false
	}
	k.armLocked(k.cfg.Clock.Now().Add(delay), TriggerIdle)
	return true
}

// Reevaluate re-arms the timer against the current wall clock. The engine calls it after the machine
// wakes from sleep (Go's timers do not count suspended time): a refresh that came due while asleep
// runs after delay instead of when the stale timer would have fired.
func (k *Keeper) Reevaluate(delay time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || k.flight != nil || k.next.IsZero() {
		return
	}
	now := k.cfg.Clock.Now()
	if !k.next.After(now) {
		trigger := k.trigger
		if trigger == TriggerSchedule {
			trigger = TriggerWake
		}
		k.armLocked(now.Add(delay), trigger)
		return
	}
	k.armLocked(k.next, k.trigger)
}

// saveOrRetry writes rec (the caller holds saveMu, not mu); if the keychain refuses, the current pair
// is marked unsaved and its save retried with backoff, as after a refresh.
func (k *Keeper) saveOrRetry(rec keychain.Record) {
	if _, err := k.put(rec); err == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.unsaved = true
	if !k.closed {
		k.armPersistLocked()
	}
}

// armPersistLocked schedules one retry of saving the in-memory pair, backing off per failure (in a
// fleet, at most fleetStoreRetry apart); at most one retry is pending. Caller holds k.mu.
func (k *Keeper) armPersistLocked() {
	if k.saving {
		return
	}
	k.saving = true
	d := k.cfg.Backoff.Delay(k.saveTries, 0, k.cfg.Rand())
	if k.cfg.Fleet != nil {
		// A fleet's store is retried on its own short cadence: the pair in memory may be the only
		// live one (its refresh's start is in the store), and every other instance waits for it.
		d = min(d, fleetStoreRetry)
	}
	k.cfg.Clock.AfterFunc(d, k.persist)
}

// persist retries the save of the current pair (whatever is newest when it runs).
func (k *Keeper) persist() {
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	k.saving = false
	if !k.unsaved || k.closed {
		k.mu.Unlock()
		return
	}
	rec := k.recordLocked()
	k.mu.Unlock()
	_, err := k.put(rec)
	k.mu.Lock()
	defer k.mu.Unlock()
	if errors.Is(err, keychain.ErrConflict) {
		// A fleet's record changed meanwhile: a newer pair is there (OnConflict reads it); this one
		// is not retried over it.
		k.unsaved, k.saveTries = false, 0
		return
	}
	if err != nil {
		k.saveTries++
		k.armPersistLocked()
		return
	}
	// saveMu is held, so nothing newer was saved or adopted meanwhile unless it came through a refresh
	// that already holds its own save; the pair saved is the current one.
	k.unsaved, k.saveTries = false, 0
}
