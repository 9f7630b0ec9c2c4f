package engine

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
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

// refused is the failure of a refresh whose connection was never made: the AS's port refuses it.
func refused() error {
	return &oauth.Error{Op: "refresh", Class: oauth.ClassTransient,
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
}

// unanswered is the failure of a refresh that left but got no answer: the refresh timeout ran out.
func unanswered() error {
	return &oauth.Error{Op: "refresh", Class: oauth.ClassTransient, Err: context.DeadlineExceeded}
}

// httpStatus is an AS's (or a gateway's) answer with status and, when code is set, an OAuth error.
func httpStatus(status int, code string) error {
	return &oauth.Error{Op: "refresh", Status: status, Code: code, Class: oauth.Classify(code, status)}
}

func TestKeeperFailedRefreshClearsTheRecordedStartOnlyWhenTheTokenWasNotSpent(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		kept bool // the record still says a refresh may have spent the refresh token
	}{
		{"the AS answered 500", httpStatus(500, ""), false},
		{"the AS answered 501", httpStatus(501, ""), false},
		{"the AS answered 503", httpStatus(503, "temporarily_unavailable"), false},
		{"the AS answered 429", httpStatus(429, ""), false},
		{"the AS answered invalid_grant", httpStatus(400, "invalid_grant"), false},
		{"the AS answered an OAuth error with HTTP 200", httpStatus(200, "invalid_grant"), false},
		{"the connection was refused", refused(), false},
		{"the AS's name did not resolve", &oauth.Error{Op: "refresh", Class: oauth.ClassTransient,
			Err: &net.DNSError{Err: "no such host", Name: "as.example", IsNotFound: true}}, false},
		{"no answer (timeout)", unanswered(), true},
		{"the connection was reset after the request left", &oauth.Error{Op: "refresh", Class: oauth.ClassTransient,
			Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, true},
		{"an unreadable 200", &oauth.Error{Op: "refresh", Status: 200, Class: oauth.ClassMisconfigured, Err: errors.New("bad JSON")}, true},
		{"a gateway's 502", httpStatus(502, ""), true},
		{"a gateway's 504", httpStatus(504, ""), true},
		{"Cloudflare's 520", httpStatus(520, ""), true},
		{"Cloudflare's 524", httpStatus(524, ""), true},
		{"Cloudflare's 527", httpStatus(527, ""), true},
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

// TestKeeperNeverResendsARefreshTokenWhoseRefreshGotNoAnswer: a refresh whose answer was lost may
// have rotated the refresh token at the AS. On a grant not known to keep its refresh token the keeper
// does not send it again (a reuse-detecting AS would revoke the whole grant): the still-valid access
// token keeps serving and one needs-sign-in says why. A refresh the AS answered with an error, or one
// whose connection was never made, leaves the token unspent: those are retried with backoff and
// recover by themselves, as is a lost answer on a grant seen not to rotate.
func TestKeeperNeverResendsARefreshTokenWhoseRefreshGotNoAnswer(t *testing.T) {
	for _, tt := range []struct {
		name     string
		err      error
		rotation oauth.Rotation
		lost     bool // the AS rotated before the error (the answer was lost), else it refused
		retried  bool
	}{
		{"a timeout", unanswered(), "", true, false},
		{"a reset after the request left", &oauth.Error{Op: "refresh", Class: oauth.ClassTransient,
			Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, oauth.RotationRotating, true, false},
		{"a gateway's 504", httpStatus(504, ""), "", true, false},
		{"a gateway's 502", httpStatus(502, ""), "", true, false},
		{"Cloudflare's 522", httpStatus(522, ""), "", true, false},
		{"a refused connection is retried", refused(), "", false, true},
		{"an AS's 500 is retried", httpStatus(500, "server_error"), "", false, true},
		{"an AS's 503 is retried", httpStatus(503, "temporarily_unavailable"), oauth.RotationRotating, false, true},
		{"a timeout on a grant seen not to rotate is retried", unanswered(), oauth.RotationFixed, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
				r := newRigWith(t, time.Hour, SystemClock{}, tok,
					oauth.Grant{Resource: "https://mcp.example/mcp", Rotation: tt.rotation}, time.Time{})
				if tt.lost {
					r.as.LoseAnswers(tt.err)
				} else {
					r.as.Fail(tt.err)
				}
				time.Sleep(48 * time.Minute) // the planned refresh fails
				synctest.Wait()
				time.Sleep(10 * time.Minute) // past every retry the backoff would make before expiry
				synctest.Wait()
				if r.as.Reused() {
					t.Fatal("the refresh token the AS had rotated was sent again")
				}
				st := r.k.Status()
				if tt.retried {
					if n := r.as.Calls(); n != 2 || st.State != StateFresh {
						t.Errorf("%d refreshes, state %s; want the retry to recover", n, st.State)
					}
					if n := r.ev.count(EventNeedsSignIn); n != 0 {
						t.Errorf("%d needs_sign_in events for a refresh that can be retried", n)
					}
					return
				}
				if n := r.as.Calls(); n != 1 {
					t.Errorf("%d refreshes, want 1: the possibly spent refresh token was sent again", n)
				}
				if st.State != StateNeedsSignIn || st.Cause != CauseRefreshInterrupted || !strings.Contains(st.Message, "may have replaced") {
					t.Errorf("status %s/%s %q; want needs-sign-in saying the refresh got no answer", st.State, st.Cause, st.Message)
				}
				if got, err := r.k.Token(context.Background()); err != nil || got != "at-0" {
					t.Errorf("Token = %q, %v; want the still-valid at-0", got, err)
				}
				if err := r.k.ForceRefresh(context.Background(), "user"); !errors.Is(err, ErrNeedsSignIn) {
					t.Errorf("ForceRefresh = %v, want ErrNeedsSignIn", err)
				}
				if _, started := r.stored(t); started.IsZero() {
					t.Error("the record lost its refresh start: a restart would send the refresh token")
				}
				time.Sleep(3 * time.Minute) // the access token expires
				if _, err := r.k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
					t.Errorf("Token after expiry = %v, want ErrNeedsSignIn", err)
				}
				if n := r.as.Calls(); n != 1 {
					t.Errorf("%d refreshes after the expiry, want still 1", n)
				}
				if n := r.ev.count(EventNeedsSignIn); n != 1 {
					t.Errorf("%d needs_sign_in events, want 1", n)
				}
			})
		})
	}
}

// TestKeeperServerRefusalWhoseRefreshGotNoAnswerRevokesWithoutResending: a 401 from the MCP server
// forces a refresh, and its answer is lost: the server is revoked (its token was refused) and the
// refresh token is not sent again by the next 401s.
func TestKeeperServerRefusalWhoseRefreshGotNoAnswerRevokesWithoutResending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.as.LoseAnswers(unanswered())
		time.Sleep(time.Minute)
		for range 3 {
			if err := r.k.Rejected(context.Background(), "at-0"); err == nil {
				t.Fatal("Rejected reported success")
			}
		}
		st := r.k.Status()
		if st.State != StateRevoked || st.Cause != CauseRefreshInterrupted || r.ev.count(EventRevoked) != 1 {
			t.Errorf("status %s/%s, events %v; want revoked once because the refresh got no answer", st.State, st.Cause, r.ev.kinds())
		}
		if n := r.as.Calls(); n != 1 || r.as.Reused() {
			t.Errorf("%d refreshes (reuse %t), want 1", n, r.as.Reused())
		}
	})
}

// TestKeeperRecordsTheRefreshStartOfAGrantSeenNotToRotate: what one refresh showed of an AS can change
// with the next, so a grant seen not to rotate records its refresh start too; a keychain that refuses
// that write does not hold its refresh back, since after a crash such a grant is refreshed as usual.
func TestKeeperRecordsTheRefreshStartOfAGrantSeenNotToRotate(t *testing.T) {
	fixed := oauth.Grant{Resource: "https://mcp.example/mcp", Rotation: oauth.RotationFixed}
	t.Run("recorded, and cleared by the answer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
			r := newRigWith(t, time.Hour, SystemClock{}, tok, fixed, time.Time{})
			gate := r.as.Gate()
			time.Sleep(48 * time.Minute)
			synctest.Wait()
			if _, started := r.stored(t); !started.Equal(time.Now()) {
				t.Fatalf("while the refresh is at the AS the record's refresh start is %v, want now", started)
			}
			gate <- 1
			synctest.Wait()
			if rt, started := r.stored(t); rt != "rt-1" || !started.IsZero() {
				t.Errorf("after the answer the keychain holds %q started %v; want rt-1 with no refresh in flight", rt, started)
			}
		})
	})
	t.Run("a keychain refusing the record does not hold the refresh back", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
			r := newRigWith(t, time.Hour, SystemClock{}, tok, fixed, time.Time{})
			r.store.failing.Store(true)
			time.Sleep(48 * time.Minute)
			synctest.Wait()
			if n := r.as.Calls(); n != 1 {
				t.Fatalf("%d refreshes at the planned time, want 1", n)
			}
			if st := r.k.Status(); st.State != StateFresh || !st.Unsaved {
				t.Errorf("status %s unsaved=%t, want fresh with the new pair unsaved", st.State, st.Unsaved)
			}
		})
	})
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
