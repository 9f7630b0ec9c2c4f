package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// TestKeeperCrossAppGrantWithoutARefreshTokenNeedsTheUserOnce: a jwt-bearer grant has no refresh
// token unless the AS issued one. Without one nothing is sent to the AS: the keeper announces one
// needs-sign-in (naming the new ID token it takes) when the refresh would have been due, the token
// serves until it expires, then is refused. With one, it is refreshed like any other grant.
func TestKeeperCrossAppGrantWithoutARefreshTokenNeedsTheUserOnce(t *testing.T) {
	g := oauth.Grant{Resource: "https://mcp.example/mcp", ClientID: "mcp-client", ClientSecret: "as-client-secret-0123", GrantType: oauth.GrantJWTBearer,
		IdPTokenEndpoint: "https://idp.example/oauth2/token", IdPClientID: "idp-client", IdPClientSecret: "idp-client-secret-4567"}
	t.Run("no refresh token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRigWith(t, time.Hour, SystemClock{}, oauth.Token{AccessToken: "at-0", Expiry: time.Now().Add(time.Hour)}, g, time.Time{})
			time.Sleep(50 * time.Minute)
			synctest.Wait()
			st := r.k.Status()
			if st.State != StateNeedsSignIn || !strings.Contains(st.Message, "new ID token") {
				t.Errorf("status %s %q, want needs-sign-in naming a new ID token", st.State, st.Message)
			}
			if got, err := r.k.Token(context.Background()); err != nil || got != "at-0" {
				t.Errorf("Token before expiry = %q, %v; want the current token", got, err)
			}
			time.Sleep(11 * time.Minute)
			synctest.Wait()
			if _, err := r.k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
				t.Errorf("Token after expiry = %v, want ErrNeedsSignIn", err)
			}
			time.Sleep(10 * time.Hour)
			synctest.Wait()
			if n := r.as.Calls(); n != 0 {
				t.Errorf("%d token requests for a grant with nothing to renew it", n)
			}
			if n := r.ev.count(EventNeedsSignIn); n != 1 {
				t.Errorf("%d needs_sign_in events, want 1", n)
			}
		})
	})
	t.Run("a refresh token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
			r := newRigWith(t, time.Hour, SystemClock{}, tok, g, time.Time{})
			time.Sleep(50 * time.Minute)
			synctest.Wait()
			if got, err := r.k.Token(context.Background()); err != nil || got != "at-1" || r.as.Calls() != 1 {
				t.Errorf("Token = %q, %v after %d refreshes; want at-1 after one", got, err, r.as.Calls())
			}
			if n := r.ev.count(EventNeedsSignIn); n != 0 {
				t.Errorf("%d needs_sign_in events for a refreshable grant", n)
			}
		})
	})
}
