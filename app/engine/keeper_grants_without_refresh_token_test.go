package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
	"github.com/google/go-cmp/cmp"
)

// Grants the keeper cannot refresh with a refresh token: a token without expiry (GitHub OAuth apps)
// plans nothing and asks for one sign-in once refused; client credentials are fetched again before
// expiry; a cross-app (jwt-bearer) grant without a refresh token needs the user once.

func TestKeeperNoExpiryTokenPlansNothingAndARefusalAsksForSignInOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A GitHub OAuth app's token: no expires_in, no refresh token.
		tok := oauth.Token{AccessToken: "gho-0", TokenType: "Bearer"}
		g := oauth.Grant{Resource: "https://mcp.example/mcp", Quirks: []oauth.Quirk{oauth.QuirkNoExpiry}}
		r := newRigWith(t, time.Hour, SystemClock{}, tok, g, time.Time{})
		time.Sleep(1000 * time.Hour)
		synctest.Wait()
		st := r.k.Status()
		if st.State != StateFresh || !st.NoExpiry || !st.Next.IsZero() {
			t.Fatalf("status %s no_expiry=%t next=%v; want fresh, no expiry, nothing planned", st.State, st.NoExpiry, st.Next)
		}
		if got, err := r.k.Token(context.Background()); err != nil || got != "gho-0" {
			t.Fatalf("Token = %q, %v", got, err)
		}
		if err := r.k.ForceRefresh(context.Background(), "user"); !errors.Is(err, ErrNothingToRefresh) {
			t.Errorf("ForceRefresh = %v, want ErrNothingToRefresh", err)
		}
		if st := r.k.Status(); st.State != StateFresh {
			t.Errorf("a refused ForceRefresh changed the state to %s", st.State)
		}
		// The server refuses it: one needs-sign-in, no refresh attempt, and the token is not handed out.
		for range 5 {
			if err := r.k.Rejected(context.Background(), "gho-0"); !errors.Is(err, ErrNeedsSignIn) {
				t.Fatalf("Rejected = %v, want ErrNeedsSignIn", err)
			}
			if _, err := r.k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
				t.Fatalf("Token after the refusal = %v, want ErrNeedsSignIn", err)
			}
		}
		if !r.k.Refused() {
			t.Error("the proxy would still send the refused token")
		}
		st = r.k.Status()
		if st.State != StateNeedsSignIn || st.Cause != CauseTokenRefused {
			t.Errorf("status %s/%s, want needs-sign-in: token refused", st.State, st.Cause)
		}
		if got := r.ev.kinds(); !cmp.Equal(got, []EventKind{EventNeedsSignIn}) {
			t.Errorf("events %v, want exactly one needs_sign_in (no revoked, no refresh)", got)
		}
		if n := r.as.Calls(); n != 0 {
			t.Errorf("%d token requests for a token that has nothing to refresh with", n)
		}
	})
}

func TestKeeperClientCredentialsRenewsBeforeExpiryWithoutARefreshToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tok := oauth.Token{AccessToken: "at-0", Expiry: time.Now().Add(time.Hour)}
		g := oauth.Grant{Resource: "https://mcp.example/mcp", ClientID: "svc", ClientSecret: "s3cret", GrantType: oauth.GrantClientCredentials}
		r := newRigWith(t, time.Hour, SystemClock{}, tok, g, time.Time{})
		for i := 1; i <= 3; i++ {
			time.Sleep(48 * time.Minute)
			synctest.Wait()
			if n := r.as.Calls(); n != i {
				t.Fatalf("%d token requests after %d lifetimes, want %d", n, i, i)
			}
		}
		if got, _ := r.k.Token(context.Background()); got != "at-3" {
			t.Errorf("Token = %q, want at-3", got)
		}
		if _, started := r.stored(t); !started.IsZero() {
			t.Error("a client_credentials refresh recorded a start: it has no refresh token to protect")
		}
		// The AS stops accepting the client: needs-sign-in, once, with a message about the credentials.
		r.as.Fail(&oauth.Error{Op: "refresh", Code: "invalid_client", Status: 401, Class: oauth.ClassClientInvalid})
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		time.Sleep(10 * time.Hour)
		synctest.Wait()
		st := r.k.Status()
		if st.State != StateNeedsSignIn || st.Cause != CauseClientRefused || !strings.Contains(st.Message, "client credentials") {
			t.Errorf("status %s/%s %q, want needs-sign-in naming the client credentials", st.State, st.Cause, st.Message)
		}
		if n := r.as.Calls(); n != 4 {
			t.Errorf("%d token requests, want 4 (no retry loop after the refusal)", n)
		}
		if n := r.ev.count(EventNeedsSignIn); n != 1 {
			t.Errorf("%d needs_sign_in events, want 1", n)
		}
	})
}

func TestKeeperClientCredentialsWithAnExpiredTokenFetchesOneAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tok := oauth.Token{AccessToken: "at-0", Expiry: time.Now().Add(-time.Minute)}
		g := oauth.Grant{Resource: "https://mcp.example/mcp", ClientID: "svc", GrantType: oauth.GrantClientCredentials}
		r := newRigWith(t, time.Hour, SystemClock{}, tok, g, time.Time{})
		if got, err := r.k.Token(context.Background()); err != nil || got != "at-1" {
			t.Fatalf("Token = %q, %v; want a new token without any sign-in", got, err)
		}
		if n := r.ev.count(EventNeedsSignIn); n != 0 {
			t.Errorf("a client_credentials server asked for a sign-in")
		}
	})
}

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
