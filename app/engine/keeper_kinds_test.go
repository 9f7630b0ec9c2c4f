package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
	"github.com/google/go-cmp/cmp"
)

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

func TestWarningsNameEachToleratedQuirk(t *testing.T) {
	g := oauth.Grant{Issuer: "https://auth.atlassian.com", AdvertisedIssuer: "https://mcp.atlassian.com",
		Scopes: []string{"api://app/.default", "offline_access"},
		Quirks: []oauth.Quirk{oauth.QuirkIssuerMismatch, oauth.QuirkPKCEAssumed, oauth.QuirkResourceOmitted,
			oauth.QuirkScopeOnRefresh, oauth.QuirkNoExpiry}}
	want := []Warning{
		{oauth.QuirkIssuerMismatch, "The server names https://mcp.atlassian.com as its authorization server, but the one that answers there is https://auth.atlassian.com; the grant is bound to https://auth.atlassian.com."},
		{oauth.QuirkPKCEAssumed, oauth.QuirkPKCEAssumed.Describe()},
		{oauth.QuirkResourceOmitted, oauth.QuirkResourceOmitted.Describe()},
		{oauth.QuirkScopeOnRefresh, "The authorization server needs the scopes on every refresh; authkeeper sends api://app/.default offline_access."},
		{oauth.QuirkNoExpiry, oauth.QuirkNoExpiry.Describe()},
	}
	if diff := cmp.Diff(want, WarningsOf(g)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got := quirkSummary(g); got != "tolerated: issuer-mismatch, pkce-assumed, resource-omitted, scope-on-refresh, no-expiry" {
		t.Errorf("summary %q", got)
	}
	if WarningsOf(oauth.Grant{}) != nil || quirkSummary(oauth.Grant{}) != "" {
		t.Error("a grant without quirks has warnings")
	}
}

func TestSignInEventRecordsTheQuirksWithoutTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		g := r.k.Grant()
		g.Quirks = []oauth.Quirk{oauth.QuirkPKCEAssumed, oauth.QuirkResourceOmitted}
		if err := r.k.Adopt(oauth.Token{AccessToken: "at-secret", RefreshToken: "rt-secret", Expiry: time.Now().Add(time.Hour)}, g); err != nil {
			t.Fatal(err)
		}
		var ev Event
		for _, e := range r.ev.l {
			if e.Kind == EventSignedIn {
				ev = e
			}
		}
		if diff := cmp.Diff(g.Quirks, ev.Quirks); diff != "" {
			t.Errorf("signed_in event quirks (-want +got):\n%s", diff)
		}
		if ev.Message != "tolerated: pkce-assumed, resource-omitted" {
			t.Errorf("signed_in message %q", ev.Message)
		}
	})
}
