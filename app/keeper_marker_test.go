package app

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// stored returns the record the rig's store holds (failing the test when there is none).
func (r *rig) stored(t *testing.T) (refreshToken string, refreshStarted time.Time) {
	t.Helper()
	rec, err := r.store.Get("demo")
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	return rec.RefreshToken, rec.RefreshStarted
}

func TestKeeperRecordsTheRefreshStartBeforeSendingAndTheAnswerClearsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		gate := r.as.Gate()
		time.Sleep(48 * time.Minute)
		synctest.Wait() // the refresh is at the AS
		rt, started := r.stored(t)
		if rt != "rt-0" || !started.Equal(time.Now()) {
			t.Fatalf("while the refresh is at the AS the keychain holds %q started %v; want rt-0 marked as refreshing since now", rt, started)
		}
		gate <- 1
		synctest.Wait()
		if rt, started := r.stored(t); rt != "rt-1" || !started.IsZero() {
			t.Errorf("after the answer the keychain holds %q started %v; want rt-1 with no refresh in flight", rt, started)
		}
	})
}

func TestKeeperDoesNotSendARefreshWhoseStartTheKeychainRefusedToRecord(t *testing.T) {
	for _, tt := range []struct {
		name      string
		backAt    time.Duration // when the keychain answers again; 0: never
		refreshAt time.Duration // when the refresh reaches the AS
		unsaved   bool          // the new pair is only in memory afterwards
	}{
		{"the keychain comes back: the retry records and refreshes", 50 * time.Minute, 48*time.Minute + 5*time.Second + 10*time.Second + 20*time.Second + 40*time.Second + 80*time.Second, false},
		{"the keychain stays down: the refresh runs at the hard deadline, unrecorded", 0, 58 * time.Minute, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, time.Hour, SystemClock{})
				start := time.Now()
				r.store.failing.Store(true)
				time.Sleep(48 * time.Minute)
				synctest.Wait()
				if n := r.as.Calls(); n != 0 {
					t.Fatalf("%d refresh requests although the keychain could not record the start", n)
				}
				st := r.k.Status()
				if st.State != StateDegraded || st.Cause != CauseRefreshNotRecorded {
					t.Fatalf("status %s/%s, want degraded: refresh not recorded", st.State, st.Cause)
				}
				if tok, err := r.k.Token(context.Background()); err != nil || tok != "at-0" {
					t.Fatalf("Token while degraded = %q, %v; want the still-valid at-0", tok, err)
				}
				if tt.backAt != 0 {
					time.Sleep(time.Until(start.Add(tt.backAt)))
					r.store.failing.Store(false)
				}
				time.Sleep(time.Until(start.Add(tt.refreshAt)) - time.Millisecond)
				synctest.Wait()
				if n := r.as.Calls(); n != 0 {
					t.Fatalf("refreshed before %v", tt.refreshAt)
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if n := r.as.Calls(); n != 1 {
					t.Fatalf("%d refreshes at %v, want 1", n, tt.refreshAt)
				}
				if tok, _ := r.k.Token(context.Background()); tok != "at-1" {
					t.Errorf("Token after the refresh = %q, want at-1", tok)
				}
				if st := r.k.Status(); st.State != StateFresh || st.Unsaved != tt.unsaved {
					t.Errorf("status %s unsaved=%t, want fresh unsaved=%t", st.State, st.Unsaved, tt.unsaved)
				}
				if n := r.ev.count(EventDegraded); n != 1 {
					t.Errorf("%d degraded events, want 1 per episode", n)
				}
			})
		})
	}
}

func TestKeeperFailedRefreshClearsTheRecordedStartOnlyWhenTheTokenWasNotSpent(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		kept bool // the record still says a refresh may have spent the refresh token
	}{
		{"the AS answered 503", &oauth.Error{Op: "refresh", Status: 503, Class: oauth.ClassTransient}, false},
		{"the AS answered invalid_grant", &oauth.Error{Op: "refresh", Code: "invalid_grant", Status: 400, Class: oauth.ClassReauth}, false},
		{"the connection was refused", &oauth.Error{Op: "refresh", Class: oauth.ClassTransient,
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, false},
		{"no answer (timeout)", &oauth.Error{Op: "refresh", Class: oauth.ClassTransient, Err: context.DeadlineExceeded}, true},
		{"an unreadable 200", &oauth.Error{Op: "refresh", Status: 200, Class: oauth.ClassMisconfigured, Err: errors.New("bad JSON")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, time.Hour, SystemClock{})
				r.as.Fail(tt.err)
				_ = r.k.ForceRefresh(context.Background(), "user")
				synctest.Wait()
				if _, started := r.stored(t); started.IsZero() == tt.kept {
					t.Errorf("after %s the record's refresh start is %v; want kept=%t", tt.name, started, tt.kept)
				}
			})
		})
	}
}

func TestKeeperLoadedAfterAnInterruptedRefresh(t *testing.T) {
	crashed := func() time.Time { return time.Now().Add(-time.Minute) }
	for _, tt := range []struct {
		name     string
		grant    oauth.Grant
		noRT     bool
		resumes  bool // refreshes as usual instead of asking for a sign-in
		wantNote bool
	}{
		{"rotation unknown: serve the token, ask once, never send the refresh token", oauth.Grant{}, false, false, true},
		{"a rotating AS: the same", oauth.Grant{Rotation: oauth.RotationRotating}, false, false, true},
		{"an AS seen not to rotate: refresh as usual", oauth.Grant{Rotation: oauth.RotationFixed}, false, true, false},
		{"client credentials: no refresh token to spend", oauth.Grant{GrantType: oauth.GrantClientCredentials}, true, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
				if tt.noRT {
					tok.RefreshToken = ""
				}
				g := tt.grant
				g.Resource = "https://mcp.example/mcp"
				r := newRigWith(t, time.Hour, SystemClock{}, tok, g, crashed())
				time.Sleep(50 * time.Minute) // past the planned refresh
				synctest.Wait()
				if got, err := r.k.Token(context.Background()); err != nil || (!tt.resumes && got != "at-0") {
					t.Fatalf("Token = %q, %v; want the stored, still valid token", got, err)
				}
				if tt.resumes {
					if n := r.as.Calls(); n != 1 || r.as.Reused() {
						t.Errorf("%d refreshes (reuse %t), want 1 as usual", n, r.as.Reused())
					}
					return
				}
				st := r.k.Status()
				if st.State != StateNeedsSignIn || st.Cause != CauseRefreshInterrupted || st.Message == "" {
					t.Errorf("status %s/%s %q, want needs-sign-in because a refresh was interrupted", st.State, st.Cause, st.Message)
				}
				if err := r.k.ForceRefresh(context.Background(), "user"); !errors.Is(err, ErrNeedsSignIn) {
					t.Errorf("ForceRefresh = %v, want ErrNeedsSignIn", err)
				}
				if err := r.k.Rejected(context.Background(), "at-0"); err == nil {
					t.Error("Rejected reported success")
				}
				time.Sleep(11 * time.Minute) // the token expires
				if _, err := r.k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
					t.Errorf("Token after expiry = %v, want ErrNeedsSignIn", err)
				}
				if n := r.as.Calls(); n != 0 {
					t.Errorf("%d refresh requests: the possibly spent refresh token was sent", n)
				}
				if n := r.ev.count(EventNeedsSignIn); n != 1 {
					t.Errorf("%d needs_sign_in events, want 1", n)
				}
				// Signing in ends it.
				r.as.Grant("rt-new")
				if err := r.k.Adopt(oauth.Token{AccessToken: "at-new", RefreshToken: "rt-new", Expiry: time.Now().Add(time.Hour)}, r.k.Grant()); err != nil {
					t.Fatal(err)
				}
				if _, started := r.stored(t); !started.IsZero() {
					t.Errorf("the sign-in's record still says a refresh is in flight (%v)", started)
				}
			})
		})
	}
}
