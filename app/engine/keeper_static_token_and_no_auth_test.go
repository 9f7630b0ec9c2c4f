package engine

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// Servers the keeper does not refresh: a static token serves until its expiry (or a refusal) and
// then asks once; a server without auth needs no token, until it demands one and becomes an OAuth
// server.

func newUnmanaged(t *testing.T, tok oauth.Token, reg oauth.RegistrationMethod) (*Keeper, *fakeAS, *events) {
	t.Helper()
	as, ev := &fakeAS{life: time.Hour, clock: SystemClock{}}, &events{}
	k, err := NewKeeper(KeeperConfig{Name: "static", Clock: SystemClock{}, Store: keychain.NewMemoryStore(time.Now),
		Auth: as, Busy: NewBusy(SystemClock{}, nil), Emit: ev.add}, tok, oauth.Grant{Resource: "https://x.example/mcp", Registration: reg}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.Start()
	t.Cleanup(k.Close)
	return k, as, ev
}

func TestStaticTokenServesUntilItsExpiryThenAsksOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, as, ev := newUnmanaged(t, oauth.Token{AccessToken: "api-key", Expiry: time.Now().Add(48 * time.Hour)}, RegistrationStaticToken)
		time.Sleep(47 * time.Hour)
		synctest.Wait()
		if tok, err := k.Token(context.Background()); err != nil || tok != "api-key" {
			t.Fatalf("Token before expiry = %q, %v", tok, err)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if _, err := k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
			t.Fatalf("Token after expiry: %v, want ErrNeedsSignIn", err)
		}
		if err := k.ForceRefresh(context.Background(), "user"); err == nil {
			t.Error("a static token was 'refreshed'")
		}
		if as.Calls() != 0 {
			t.Errorf("the AS was asked %d times for a static token", as.Calls())
		}
		if n := ev.count(EventNeedsSignIn); n != 1 {
			t.Errorf("%d needs_sign_in events, want 1", n)
		}
		if st := k.Status(); st.State != StateNeedsSignIn {
			t.Errorf("state %s", st.State)
		}
	})
}

func TestStaticTokenWithoutExpiryNeverExpiresButARefusalMarksItRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, _, ev := newUnmanaged(t, oauth.Token{AccessToken: "api-key"}, RegistrationStaticToken)
		time.Sleep(1000 * time.Hour)
		synctest.Wait()
		if tok, err := k.Token(context.Background()); err != nil || tok != "api-key" {
			t.Fatalf("Token = %q, %v", tok, err)
		}
		if err := k.Rejected(context.Background(), "api-key"); !errors.Is(err, ErrNeedsSignIn) {
			t.Fatalf("Rejected = %v, want ErrNeedsSignIn", err)
		}
		if st := k.Status(); st.State != StateRevoked || ev.count(EventRevoked) != 1 {
			t.Errorf("state %s, events %v", st.State, ev.kinds())
		}
	})
}

func TestNoAuthServerNeedsNoToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, as, _ := newUnmanaged(t, oauth.Token{}, RegistrationNoAuth)
		time.Sleep(time.Hour)
		tok, err := k.Token(context.Background())
		if err != nil || tok != "" {
			t.Fatalf("Token = %q, %v; want no token and no error", tok, err)
		}
		if st := k.Status(); st.State != StateFresh || as.Calls() != 0 {
			t.Errorf("state %s, %d AS calls", st.State, as.Calls())
		}
	})
}

func TestNoAuthServerBecomesOAuthWhenItDemandsAToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, as, ev := newUnmanaged(t, oauth.Token{}, RegistrationNoAuth)
		if !k.NoAuth() {
			t.Fatal("not a no-auth server")
		}
		challenge := []string{`Bearer resource_metadata="https://x.example/.well-known/oauth-protected-resource/mcp", scope="mcp:read"`}
		if !k.AuthRequired(challenge) || k.AuthRequired([]string{"Bearer"}) {
			t.Fatal("AuthRequired should convert the server exactly once")
		}
		if got := k.Challenge(); !slices.Equal(got, challenge) {
			t.Errorf("Challenge = %q, want the first 401's %q", got, challenge)
		}
		st := k.Status()
		if st.Auth != "oauth" || st.State != StateNeedsSignIn || st.Cause != CauseAuthRequired {
			t.Errorf("status %s %s/%s, want an oauth server that needs sign-in", st.Auth, st.State, st.Cause)
		}
		if _, err := k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
			t.Errorf("Token = %v, want ErrNeedsSignIn", err)
		}
		rec, err := k.cfg.Store.(*keychain.MemoryStore).Get("static")
		if err != nil || rec.Binding.RegistrationMethod != "" || rec.Binding.Resource != "https://x.example/mcp" ||
			!slices.Equal(rec.Challenge, challenge) {
			t.Errorf("stored record %v, %v; want an OAuth binding for the server without tokens, with its challenge", rec, err)
		}
		// A sign-in keeps the challenge: signing in again after a logout may need it as much.
		if err := k.Adopt(oauth.Token{AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)},
			oauth.Grant{Resource: "https://x.example/mcp"}); err != nil {
			t.Fatal(err)
		}
		if rec, _ := k.cfg.Store.(*keychain.MemoryStore).Get("static"); !slices.Equal(rec.Challenge, challenge) {
			t.Errorf("after a sign-in the record's challenge is %q, want it kept", rec.Challenge)
		}
		if ev.count(EventNeedsSignIn) != 1 || as.Calls() != 0 {
			t.Errorf("events %v, %d AS calls; want one needs_sign_in and nothing asked of an AS", ev.kinds(), as.Calls())
		}
	})
}
