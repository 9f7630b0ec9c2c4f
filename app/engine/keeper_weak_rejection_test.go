package engine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// RejectedWeakly: a server's answer that only says authentication failed (a JSON-RPC error in a 200
// body) forces one refresh, as a 401 does, but concludes nothing from the server's word alone.

// TestKeeperWeakRejectionRefreshesOnce: the token is renewed once; a stale weak rejection of the old
// token refreshes nothing more.
func TestKeeperWeakRejectionRefreshesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		time.Sleep(time.Minute)
		if err := r.k.RejectedWeakly(context.Background(), "at-0"); err != nil {
			t.Fatal(err)
		}
		if err := r.k.RejectedWeakly(context.Background(), "at-0"); err != nil {
			t.Fatal(err)
		}
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d refreshes, want 1", n)
		}
		if tok, err := r.k.Token(context.Background()); err != nil || tok == "at-0" {
			t.Errorf("Token = %q, %v; want the refreshed one", tok, err)
		}
	})
}

// TestKeeperWeakRejectionNeverRevokes: when the forced refresh is refused by the AS the grant needs a
// sign-in, as after a scheduled refresh, and is not announced as revoked by the server.
func TestKeeperWeakRejectionNeverRevokes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		time.Sleep(time.Minute)
		r.as.Fail(&oauth.Error{Op: "refresh", Code: "invalid_grant", Status: 400, Class: oauth.ClassReauth})
		if err := r.k.RejectedWeakly(context.Background(), "at-0"); !errors.Is(err, oauth.ErrReauthRequired) && !errors.Is(err, ErrNeedsSignIn) {
			t.Fatalf("RejectedWeakly with a dead grant = %v, want the refusal", err)
		}
		if st := r.k.Status(); st.State != StateNeedsSignIn || st.Cause != CauseRefreshRefused {
			t.Errorf("status %s/%s, want needs-sign-in: refresh refused", st.State, st.Cause)
		}
		if n := r.ev.count(EventRevoked); n != 0 {
			t.Errorf("events %v: revoked on weak evidence", r.ev.kinds())
		}
	})
}

// TestKeeperWeakRejectionLeavesATokenNoRefreshCanRenew: a token without a refresh token, or a static
// one, stays as it is: no refresh, no state change, no event, and it is still handed out.
func TestKeeperWeakRejectionLeavesATokenNoRefreshCanRenew(t *testing.T) {
	for _, c := range []struct {
		name string
		k    func(t *testing.T) (*Keeper, *fakeAS, *events)
	}{
		{"no refresh token", func(t *testing.T) (*Keeper, *fakeAS, *events) {
			r := newRigWith(t, time.Hour, SystemClock{}, oauth.Token{AccessToken: "at-0", TokenType: "Bearer"},
				oauth.Grant{Resource: "https://mcp.example/mcp", Quirks: []oauth.Quirk{oauth.QuirkNoExpiry}}, time.Time{})
			return r.k, r.as, r.ev
		}},
		{"static token", func(t *testing.T) (*Keeper, *fakeAS, *events) {
			return newUnmanaged(t, oauth.Token{AccessToken: "at-0"}, RegistrationStaticToken)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				k, as, ev := c.k(t)
				if k.Renewable() {
					t.Fatal("Renewable for a token nothing can renew")
				}
				if err := k.RejectedWeakly(context.Background(), "at-0"); err != nil {
					t.Fatalf("RejectedWeakly = %v, want nil (nothing to do)", err)
				}
				if tok, err := k.Token(context.Background()); err != nil || tok != "at-0" {
					t.Errorf("Token after a weak rejection = %q, %v; want the same token", tok, err)
				}
				if st := k.Status(); st.State != StateFresh {
					t.Errorf("state %s, want fresh", st.State)
				}
				if n := as.Calls(); n != 0 {
					t.Errorf("%d token requests", n)
				}
				if got := ev.kinds(); len(got) != 0 {
					t.Errorf("events %v, want none", got)
				}
			})
		})
	}
}

// TestKeeperWeakRejectionOnAFleetFollowerAsksNobody: in a fleet an instance that does not refresh the
// grant neither refreshes nor asks the refresher on weak evidence (asks from every instance would each
// refresh the token another instance's weak refresh produced): it answers at once, the token stays.
func TestKeeperWeakRejectionOnAFleetFollowerAsksNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := newFleetRig(t, false)
		if err := r.k.RejectedWeakly(context.Background(), "at-0"); err != nil {
			t.Fatalf("RejectedWeakly on a follower = %v, want nil at once (no ask)", err)
		}
		if tok, err := r.k.Token(context.Background()); err != nil || tok != "at-0" {
			t.Errorf("Token = %q, %v; want the same token", tok, err)
		}
		if n := r.as.Calls(); n != 0 {
			t.Errorf("%d token requests from a follower", n)
		}
	})
}
