package engine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// What the keeper does when the AS or the server refuses: a dead grant stops retrying and is
// announced once; a server's 401 costs one forced refresh, and a refusal of the fresh token marks
// the server revoked; 401s while degraded wait for the scheduled retry.

func TestKeeperReauthNeededStopsRetryingAndAnnouncesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.as.Fail(&oauth.Error{Op: "refresh", Code: "invalid_grant", Status: 400, Class: oauth.ClassReauth})
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d refresh attempts after invalid_grant, want 1 (no retry loop)", n)
		}
		if _, err := r.k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
			t.Errorf("Token after the grant died: %v, want ErrNeedsSignIn", err)
		}
		if err := r.k.ForceRefresh(context.Background(), "user"); err == nil {
			t.Error("a forced refresh of a dead grant succeeded")
		}
		if n := r.ev.count(EventNeedsSignIn); n != 1 {
			t.Errorf("%d needs_sign_in events, want exactly 1 per episode", n)
		}
		if r.as.Reused() {
			t.Error("the dead grant's refresh token was replayed")
		}
		// Signing in ends the episode and resumes the schedule.
		r.as.Grant("rt-new")
		if err := r.k.Adopt(oauth.Token{AccessToken: "at-new", RefreshToken: "rt-new", Expiry: time.Now().Add(time.Hour)}, r.k.Grant()); err != nil {
			t.Fatal(err)
		}
		if tok, err := r.k.Token(context.Background()); err != nil || tok != "at-new" {
			t.Fatalf("Token after sign-in = %q, %v", tok, err)
		}
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		if st := r.k.Status(); st.State != StateFresh || st.Last.Trigger != "schedule" {
			t.Errorf("after sign-in the schedule did not resume: %+v", st)
		}
	})
}

func TestKeeperRejectedTokenForcesOneRefreshThenRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		time.Sleep(time.Minute)
		if err := r.k.Rejected(context.Background(), "at-0"); err != nil {
			t.Fatal(err)
		}
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes after a 401, want 1", n)
		}
		// A second 401 for the old token is stale: the keeper already moved on.
		if err := r.k.Rejected(context.Background(), "at-0"); err != nil || r.as.Calls() != 1 {
			t.Fatalf("stale rejection refreshed again: %v, %d calls", err, r.as.Calls())
		}
		r.as.Fail(&oauth.Error{Op: "refresh", Code: "invalid_grant", Status: 400, Class: oauth.ClassReauth})
		time.Sleep(time.Minute)
		if err := r.k.Rejected(context.Background(), "at-1"); err == nil {
			t.Fatal("rejection with a dead grant reported success")
		}
		if st := r.k.Status(); st.State != StateRevoked {
			t.Errorf("state %s, want revoked", st.State)
		}
		if r.ev.count(EventRevoked) != 1 {
			t.Errorf("events %v, want one revoked", r.ev.kinds())
		}
	})
}

func TestKeeperRefusedAfterRefreshMarksRevokedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		if err := r.k.Rejected(context.Background(), "at-0"); err != nil {
			t.Fatal(err)
		}
		// The server refuses the new token too: the proxy reports it, and no further refresh happens.
		r.k.RefusedAfterRefresh("at-1")
		r.k.RefusedAfterRefresh("at-1")
		if err := r.k.Rejected(context.Background(), "at-1"); !errors.Is(err, ErrNeedsSignIn) {
			t.Fatalf("Rejected after the server refused a fresh token = %v, want ErrNeedsSignIn", err)
		}
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d refreshes for a server refusing every token, want 1", n)
		}
		if st := r.k.Status(); st.State != StateRevoked || r.ev.count(EventRevoked) != 1 {
			t.Errorf("state %s, events %v: want revoked, announced once", st.State, r.ev.kinds())
		}
	})
}

func TestKeeperRejectedWhileDegradedWaitsForTheScheduledRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 10*time.Minute, SystemClock{})
		r.as.Fail(refused(), refused()) // the AS is down: its port refuses connections
		time.Sleep(5 * time.Minute)     // half-life
		synctest.Wait()
		// Agents' calls meet 401s on the expiring token: none of them may jump ahead of the retry.
		for range 10 {
			if err := r.k.Rejected(context.Background(), "at-0"); !errors.Is(err, oauth.ErrTransient) {
				t.Fatalf("Rejected while backing off = %v, want the transient failure", err)
			}
		}
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes, want 1: 401s jumped ahead of the scheduled retry", n)
		}
		time.Sleep(5 * time.Second) // the first retry (5 s) fails too; the next waits 10 s, not more
		synctest.Wait()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 3 {
			t.Errorf("%d refreshes after 5 s + 10 s of backoff, want 3", n)
		}
		if st := r.k.Status(); st.State != StateFresh {
			t.Errorf("state %s after the AS came back", st.State)
		}
	})
}
