package engine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

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
