package engine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// When the keeper refreshes: at the planned time, deferred while an agent turn is busy but never
// past the hard deadline, on wake after the timer slept through expiry, and never ahead of a
// backoff or Retry-After. Fake time (testing/synctest) against the rig's fake AS
// (keeper_rig_test.go).

func TestKeeperRefreshesAtPlannedTimeAndPersistsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		time.Sleep(48*time.Minute - time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("%d refreshes before 80%% of the lifetime", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes at 80%% of the lifetime, want 1", n)
		}
		rec, err := r.store.Get("demo")
		if err != nil || rec.AccessToken != "at-1" || rec.RefreshToken != "rt-1" {
			t.Fatalf("stored %v, %v; want the rotated pair", rec, err)
		}
		tok, err := r.k.Token(context.Background())
		if err != nil || tok != "at-1" {
			t.Fatalf("Token = %q, %v", tok, err)
		}
		st := r.k.Status()
		if st.State != StateFresh || st.Last.Trigger != "schedule" || st.Next.Sub(st.Last.At) != 48*time.Minute {
			t.Errorf("status %+v", st)
		}
	})
}

func TestKeeperDefersWhileBusyAndRefreshesWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.busy.Start("turn", "agent", time.Hour)
		time.Sleep(49 * time.Minute)
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("refreshed while busy before the deadline (%d)", n)
		}
		if st := r.k.Status(); st.State != StateDeferred || !st.Deferred || st.NextTrigger != "deadline" {
			t.Fatalf("status %+v, want deferred until the deadline", st)
		}
		r.busy.End("turn")
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes after the last lease ended, want 1", n)
		}
		if got := r.k.Status().Last.Trigger; got != "idle" {
			t.Errorf("trigger %q, want idle", got)
		}
		if r.ev.count(EventDeferred) != 1 || r.ev.count(EventRefreshed) != 1 {
			t.Errorf("events %v", r.ev.kinds())
		}
	})
}

func TestKeeperHardDeadlineRefreshesEvenWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.busy.Start("long-turn", "agent", 10*time.Hour)
		start := time.Now()
		time.Sleep(58*time.Minute - time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("refreshed before the hard deadline while busy (%d)", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes at the hard deadline, want 1", n)
		}
		if got := r.k.Status().Last; got.Trigger != "deadline" || got.At.Sub(start) != 58*time.Minute {
			t.Errorf("last refresh %+v, want the deadline at +58m", got)
		}
		if r.ev.count(EventDeadlineRefresh) != 1 {
			t.Errorf("events %v, want a deadline_refresh", r.ev.kinds())
		}
		// Over a long busy period every token is replaced before it expires.
		for range 10 {
			time.Sleep(time.Hour)
			synctest.Wait()
			if _, err := r.k.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n := r.as.Calls(); n < 10 {
			t.Errorf("%d refreshes over 10 busy hours", n)
		}
	})
}

func TestKeeperBacksOffOnTransientErrorsHonouringRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.as.Fail(
			&oauth.Error{Op: "refresh", Status: 429, Class: oauth.ClassTransient, RetryAfter: 90 * time.Second},
			&oauth.Error{Op: "refresh", Status: 503, Class: oauth.ClassTransient},
			&oauth.Error{Op: "refresh", Status: 503, Class: oauth.ClassTransient})
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d calls at the planned time, want 1", n)
		}
		// Retries: Retry-After 90 s beats the first backoff (5 s); the next failures wait 10 s, then 20 s.
		at := time.Now()
		for i, gap := range []time.Duration{90 * time.Second, 10 * time.Second, 20 * time.Second} {
			at = at.Add(gap)
			time.Sleep(time.Until(at) - time.Millisecond)
			synctest.Wait()
			if n := r.as.Calls(); n != i+1 {
				t.Fatalf("retry %d came early: %d calls 1ms before it was due", i+1, n)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if n := r.as.Calls(); n != i+2 {
				t.Fatalf("retry %d: %d calls, want %d", i+1, n, i+2)
			}
		}
		if st := r.k.Status(); st.State != StateFresh {
			t.Errorf("state %s after recovery", st.State)
		}
		if r.ev.count(EventDegraded) != 1 || r.ev.count(EventRecovered) != 1 {
			t.Errorf("events %v: want one degraded and one recovered", r.ev.kinds())
		}
	})
}

func TestKeeperRefreshesOnWakeWhenTheTimerSleptThroughExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &jumpClock{}
		r := newRig(t, time.Hour, clock)
		time.Sleep(10 * time.Minute)
		clock.Jump(2 * time.Hour) // the laptop slept through the planned refresh and the expiry
		r.k.Reevaluate(time.Second)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes on wake, want 1", n)
		}
		if got := r.k.Status().Last.Trigger; got != "wake" {
			t.Errorf("trigger %q, want wake", got)
		}
	})
}

func TestKeeperDoesNotRefreshAheadOfRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 10*time.Minute, SystemClock{})
		r.as.Fail(&oauth.Error{Op: "refresh", Status: 429, Class: oauth.ClassTransient, RetryAfter: time.Hour})
		time.Sleep(5 * time.Minute) // half-life: the refresh fails with Retry-After: 1h
		synctest.Wait()
		time.Sleep(6 * time.Minute) // the token has expired; the AS asked us to wait
		for range 20 {
			if _, err := r.k.Token(context.Background()); err == nil {
				t.Fatal("Token returned a token after expiry while backing off")
			}
		}
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d refresh requests while the AS asked to wait an hour, want 1", n)
		}
		if _, err := r.k.Token(context.Background()); !errors.Is(err, oauth.ErrTransient) {
			t.Errorf("error while backing off = %v, want it to wrap the transient failure", err)
		}
	})
}
