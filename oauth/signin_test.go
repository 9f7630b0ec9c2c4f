package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

func TestSignInLoopbackGetsTokenTheMCPServerAccepts(t *testing.T) {
	for _, ts := range []bool{false, true} {
		name := map[bool]string{false: "GoSDK", true: "TSSDK"}[ts]
		t.Run(name, func(t *testing.T) {
			b := newBench(t, benchOptions{ts: ts, mcp: testbedScopes("mcp:read")})
			tok, g := b.signIn(t, SignInOptions{})
			requireAccepted(t, b.mcp.URL, tok)
			if tok.RefreshToken == "" || !tok.Valid(time.Now(), time.Minute) {
				t.Errorf("token = %v, want a valid one with a refresh token", tok)
			}
			if g.Resource != b.mcp.URL || g.Issuer != b.as.Issuer || g.TokenEndpoint != b.as.TokenURL ||
				g.RevocationEndpoint != b.as.RevocationURL || g.Registration != RegistrationDynamic || g.AuthMethod != AuthNone {
				t.Errorf("grant = %v", g)
			}
			// The authorization request carried PKCE S256, state, resource and the challenge's scope
			// plus offline_access.
			opened := b.browser.Opened()
			if len(opened) != 1 {
				t.Fatalf("opened %d URLs, want 1", len(opened))
			}
			u, _ := url.Parse(opened[0])
			q := u.Query()
			for k, want := range map[string]string{
				"resource": b.mcp.URL, "code_challenge_method": "S256", "scope": "mcp:read offline_access",
				"response_type": "code", "client_id": g.ClientID,
			} {
				if q.Get(k) != want {
					t.Errorf("authorization request %s = %q, want %q", k, q.Get(k), want)
				}
			}
			if len(q.Get("state")) < 16 || len(q.Get("code_challenge")) != 43 {
				t.Errorf("state %q / code_challenge %q too short", q.Get("state"), q.Get("code_challenge"))
			}
			if ru := q.Get("redirect_uri"); !strings.HasPrefix(ru, "http://127.0.0.1:") || !strings.HasSuffix(ru, "/callback") {
				t.Errorf("redirect_uri = %q", ru)
			}
			v, err := b.browser.Wait(t.Context())
			if err != nil || v.Status != http.StatusOK || !strings.Contains(v.Body, "Signed in") {
				t.Errorf("browser saw %d %q (%v), want the success page", v.Status, v.Body, err)
			}
		})
	}
}

// TestSignInRejectsBadAuthorizationResponses pins RFC 6749 §10.12 state and RFC 9207 iss checks,
// including on error responses, and that nothing is redeemed after a rejection.
func TestSignInRejectsBadAuthorizationResponses(t *testing.T) {
	setQuery := func(k, v string) func(*url.URL) {
		return func(u *url.URL) {
			q := u.Query()
			if v == "" {
				q.Del(k)
			} else {
				q.Set(k, v)
			}
			u.RawQuery = q.Encode()
		}
	}
	for _, c := range []struct {
		name    string
		browser testbed.BrowserOptions
		want    error
		class   Class // when want is nil: an *Error of this class
		code    string
	}{
		{"StateMismatch", testbed.BrowserOptions{Tamper: setQuery("state", "forged")}, ErrStateMismatch, 0, ""},
		{"StateMissing", testbed.BrowserOptions{Tamper: setQuery("state", "")}, ErrStateMismatch, 0, ""},
		{"IssMismatch", testbed.BrowserOptions{Tamper: setQuery("iss", "https://evil.example")}, ErrIssuerMismatch, 0, ""},
		{"IssMissingWhenAdvertised", testbed.BrowserOptions{Tamper: setQuery("iss", "")}, ErrIssuerMismatch, 0, ""},
		{"IssMismatchOnErrorResponse", testbed.BrowserOptions{Deny: true, Tamper: setQuery("iss", "https://evil.example")}, ErrIssuerMismatch, 0, ""},
		{"Denied", testbed.BrowserOptions{Deny: true}, nil, ClassReauth, "access_denied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBench(t, benchOptions{browser: c.browser})
			_, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{})
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("SignIn error = %v, want %v", err, c.want)
				}
				if strings.Contains(err.Error(), "access_denied") {
					t.Errorf("error %q repeats the unverified response's error", err)
				}
			} else {
				var oe *Error
				if !errors.As(err, &oe) || oe.Class != c.class || oe.Code != c.code {
					t.Fatalf("SignIn error = %v, want *Error %s of class %v", err, c.code, c.class)
				}
			}
			if n := b.as.TokenRequests(t, "authorization_code"); n != 0 {
				t.Errorf("%d code exchanges after a rejected response, want 0", n)
			}
			v, _ := b.browser.Wait(t.Context())
			if v.Status != http.StatusBadRequest || !strings.Contains(v.Body, "Sign-in failed") {
				t.Errorf("browser saw %d %q, want the failure page", v.Status, v.Body)
			}
		})
	}
}

func TestSignInAcceptsOnlyTheFirstCallback(t *testing.T) {
	b := newBench(t, benchOptions{browser: testbed.BrowserOptions{DeliverTwice: true}})
	tok, _ := b.signIn(t, SignInOptions{})
	requireAccepted(t, b.mcp.URL, tok)
	v, err := b.browser.Wait(t.Context())
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if v.Status != http.StatusOK || v.SecondStatus != http.StatusBadRequest || !strings.Contains(v.SecondBody, "already") {
		t.Errorf("callbacks answered %d then %d %q, want 200 then 400", v.Status, v.SecondStatus, v.SecondBody)
	}
	if n := b.as.TokenRequests(t, "authorization_code"); n != 1 {
		t.Errorf("%d code exchanges, want 1", n)
	}
}

func TestSignInTimesOutWhenTheBrowserNeverReturns(t *testing.T) {
	b := newBench(t, benchOptions{browser: testbed.BrowserOptions{NoDeliver: true}, cfg: Config{SignInTimeout: 500 * time.Millisecond}})
	start := time.Now()
	_, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{})
	if !errors.Is(err, ErrSignInTimeout) {
		t.Fatalf("SignIn error = %v, want ErrSignInTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timed out after %v", d)
	}
}

func TestSignInAllowsOneInteractiveSignInPerServer(t *testing.T) {
	b := newBench(t, benchOptions{browser: testbed.BrowserOptions{NoDeliver: true}, cfg: Config{SignInTimeout: 3 * time.Second}})
	p := b.probe(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, _, errs[i] = b.client.SignIn(t.Context(), p, SignInOptions{}) })
		if i == 0 {
			waitFor(t, func() bool { return len(b.browser.Opened()) == 1 })
		}
	}
	wg.Wait()
	if !errors.Is(errs[0], ErrSignInTimeout) || !errors.Is(errs[1], ErrSignInInProgress) {
		t.Errorf("errors = %v, %v; want a timeout and ErrSignInInProgress", errs[0], errs[1])
	}
	if n := len(b.browser.Opened()); n != 1 {
		t.Errorf("browser opened %d times, want 1", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond) // polling a peer's state, not waiting for our own goroutine
	}
}

// TestSignInWithUserSuppliedClient pins the first registration route: a client registered by hand,
// with a secret and a fixed redirect port, authenticated as registered on the token endpoint.
func TestSignInWithUserSuppliedClient(t *testing.T) {
	for _, method := range []AuthMethod{AuthClientSecretBasic, AuthClientSecretPost} {
		t.Run(string(method), func(t *testing.T) {
			b := newBench(t, benchOptions{})
			port := testbed.FreePort(t)
			sc := registerByHand(t, b.as, port, method)
			tok, g := b.signIn(t, SignInOptions{Client: &sc})
			requireAccepted(t, b.mcp.URL, tok)
			if g.Registration != RegistrationStatic || g.ClientID != sc.ID || g.AuthMethod != method || g.RedirectPort != port {
				t.Errorf("grant = %v", g)
			}
			u, _ := url.Parse(b.browser.Opened()[0])
			if ru := u.Query().Get("redirect_uri"); ru != "http://127.0.0.1:"+itoa(port)+"/callback" {
				t.Errorf("redirect_uri = %q, want the fixed port %d", ru, port)
			}
			if strings.Contains(g.String(), sc.Secret) || strings.Contains(tok.String(), tok.AccessToken) {
				t.Error("String() leaks a secret")
			}
			tok2, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh as a confidential client: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok2)
			if slices.ContainsFunc(b.as.Events(t), func(e string) bool { return strings.HasPrefix(e, "client.registered") && !strings.Contains(e, sc.ID) }) {
				t.Error("the client registered itself although the user supplied a client id")
			}
		})
	}
}
