package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

func TestRefreshRotatesAndTheNewTokenWorks(t *testing.T) {
	for _, c := range []struct {
		name string
		as   testbed.AuthServerOptions
		mcp  testbed.MCPServerOptions
	}{
		{"JWT", testbed.AuthServerOptions{}, testbed.MCPServerOptions{}},
		{"Opaque", testbed.AuthServerOptions{Opaque: true}, testbed.MCPServerOptions{Opaque: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := benchOptions{as: c.as, mcp: c.mcp}
			b := newBench(t, o)
			tok, g := b.signIn(t, SignInOptions{})
			tok2, g2, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if g2.OmitResource || g2.ClientID != g.ClientID || g2.Rotation != RotationRotating {
				t.Errorf("grant = %v rotation %q, want the same client, rotating", g2, g2.Rotation)
			}
			if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken || tok2.RefreshToken == "" {
				t.Error("refresh did not rotate both tokens")
			}
			requireAccepted(t, b.mcp.URL, tok2)
			if n := b.as.TokenRequests(t, "refresh_token"); n != 1 {
				t.Errorf("%d refresh requests, want 1", n)
			}
		})
	}
}

func TestRefreshKeepsTheRefreshTokenWhenTheASDoesNotRotate(t *testing.T) {
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{NoRotation: true}})
	tok, g := b.signIn(t, SignInOptions{})
	for range 2 {
		tok2, g2, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
		if err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if tok2.RefreshToken != tok.RefreshToken || g2.Rotation != RotationFixed {
			t.Fatalf("refresh token changed on a non-rotating AS, or rotation %q is not fixed", g2.Rotation)
		}
		requireAccepted(t, b.mcp.URL, tok2)
	}
}

// TestRefreshKeepsTheRefreshTokenWhenTheAnswerHasNone pins the rule of RFC 6749 §6 that Refresh
// applies: an answer without refresh_token leaves the old one valid, so the token Refresh returns
// carries it (the engine stores that token whole). oidc-provider always sends one, so the answers
// come from a loopback AS.
func TestRefreshKeepsTheRefreshTokenWhenTheAnswerHasNone(t *testing.T) {
	for _, c := range []struct {
		name     string
		body     string
		refresh  string
		rotation Rotation
	}{
		{"None", `{"access_token":"AT-2","token_type":"Bearer","expires_in":3600}`, "RT-1", RotationFixed},
		{"Empty", `{"access_token":"AT-2","token_type":"Bearer","expires_in":3600,"refresh_token":""}`, "RT-1", RotationFixed},
		{"Same", `{"access_token":"AT-2","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-1"}`, "RT-1", RotationFixed},
		{"New", `{"access_token":"AT-2","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-2"}`, "RT-2", RotationRotating},
	} {
		t.Run(c.name, func(t *testing.T) {
			as := newMiniAS(t, false, func(int, url.Values) (int, string) { return http.StatusOK, c.body })
			client, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			g := Grant{Resource: as.URL + "/mcp", Issuer: as.URL, TokenEndpoint: as.URL + "/token", ClientID: "c", AuthMethod: AuthNone}
			tok, g, err := client.Refresh(t.Context(), g, "RT-1")
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok.AccessToken != "AT-2" || tok.RefreshToken != c.refresh || g.Rotation != c.rotation {
				t.Errorf("Refresh = %v rotation %q; want access AT-2, refresh %s, rotation %q (refresh %q)",
					tok, g.Rotation, c.refresh, c.rotation, tok.RefreshToken)
			}
		})
	}
}

// TestRefreshTokenReuseKillsTheGrant proves why the keeper must never replay a refresh token: on a
// rotating AS the replay fails and takes the newest refresh token down with it.
func TestRefreshTokenReuseKillsTheGrant(t *testing.T) {
	b := newBench(t, benchOptions{})
	tok, g := b.signIn(t, SignInOptions{})
	tok2, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	_, _, err = b.client.Refresh(t.Context(), g, tok.RefreshToken)
	if !errors.Is(err, ErrReauthRequired) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("replayed refresh error = %v, want invalid_grant (re-auth)", err)
	}
	_, _, err = b.client.Refresh(t.Context(), g, tok2.RefreshToken)
	if !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("refresh with the newest token after a reuse = %v, want re-auth: the grant should be dead", err)
	}
	if !slices.ContainsFunc(b.as.Events(t), func(e string) bool { return strings.HasPrefix(e, "grant.revoked") }) {
		t.Errorf("AS events %q lack grant.revoked", b.as.Events(t))
	}
}

// TestRefreshAfterASRestartReregisters: a restarted AS forgets the dynamic client; Refresh says the
// client is invalid and hands back a fresh registration, with which the next sign-in works.
func TestRefreshAfterASRestartReregisters(t *testing.T) {
	b := newBench(t, benchOptions{})
	tok, g := b.signIn(t, SignInOptions{})
	b.as.Restart(t)
	_, g2, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
	if !errors.Is(err, ErrClientInvalid) {
		t.Fatalf("Refresh after restart = %v, want ErrClientInvalid", err)
	}
	if g2.ClientID == "" || g2.ClientID == g.ClientID || g2.Registration != RegistrationDynamic {
		t.Fatalf("grant after re-registration = %v, want a new dynamic client", g2)
	}
	tok2, g3, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{Previous: &g2})
	if err != nil {
		t.Fatalf("SignIn with the new registration: %v", err)
	}
	if g3.ClientID != g2.ClientID {
		t.Errorf("sign-in registered again (%s), want the re-registered client %s reused", g3.ClientID, g2.ClientID)
	}
	requireAccepted(t, b.mcp.URL, tok2)
}

// TestRefreshFailuresAreClassified pins the error classes of an unreachable, failing, throttled and
// slow AS, and that a failed attempt does not spend the refresh token.
func TestRefreshFailuresAreClassified(t *testing.T) {
	b := newBench(t, benchOptions{cfg: Config{HTTPClient: &http.Client{Timeout: 500 * time.Millisecond}}})
	tok, g := b.signIn(t, SignInOptions{})
	for _, c := range []struct {
		name       string
		arm        func()
		disarm     func()
		class      Class
		code       string
		retryAfter time.Duration
	}{
		{"Down", func() { b.as.Stop(t) }, func() { b.as.Start(t) }, ClassTransient, "", 0},
		{"500", func() { b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 500}) }, nil, ClassTransient, "server_error", 0},
		{"503", func() { b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 503, RetryAfter: "3"}) }, nil, ClassTransient, "temporarily_unavailable", 3 * time.Second},
		{"429", func() { b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 429, RetryAfter: "7"}) }, nil, ClassTransient, "temporarily_unavailable", 7 * time.Second},
		{"HTMLError", func() {
			b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 502, Body: "<html>bad gateway</html>", ContentType: "text/html"})
		}, nil, ClassTransient, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.arm()
			_, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
			if c.disarm != nil {
				c.disarm()
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Class != c.class || oe.Code != c.code || oe.RetryAfter != c.retryAfter {
				t.Fatalf("Refresh error = %#v, want class %v code %q retry-after %v", err, c.class, c.code, c.retryAfter)
			}
			if !errors.Is(err, ErrTransient) {
				t.Errorf("errors.Is(%v, ErrTransient) = false", err)
			}
		})
	}
	// None of the failures spent the refresh token (the faults answered before oidc-provider saw it,
	// and a stopped AS saw nothing), so it still works.
	tok2, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after the failures: %v", err)
	}
	requireAccepted(t, b.mcp.URL, tok2)

	// A slow AS: our request times out as transient (the delayed request still reaches the AS, so the
	// token is spent there; this is why a timed-out refresh must be retried with care by the engine).
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Delay: 2 * time.Second})
	start := time.Now()
	_, _, err = b.client.Refresh(t.Context(), g, tok2.RefreshToken)
	if !errors.Is(err, ErrTransient) || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("Refresh against a slow AS = %v after %v, want a transient timeout after ~500ms", err, time.Since(start))
	}
}

// TestRefreshKeepsTheRegistrationOnABare401: a captive portal or WAF answering 401 without an OAuth
// error must not throw away a working registration; the refresh token is not spent either.
func TestRefreshKeepsTheRegistrationOnABare401(t *testing.T) {
	b := newBench(t, benchOptions{})
	tok, g := b.signIn(t, SignInOptions{})
	registrations := b.as.Stats(t).Requests["registration"]
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 401, Body: "<html>sign in to the Wi-Fi</html>", ContentType: "text/html"})
	_, g2, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
	if !errors.Is(err, ErrClientInvalid) {
		t.Fatalf("Refresh through a bare 401 = %v, want it reported as ErrClientInvalid", err)
	}
	if g2.ClientID != g.ClientID || b.as.Stats(t).Requests["registration"] != registrations {
		t.Fatalf("a bare 401 re-registered: client %s → %s", g.ClientID, g2.ClientID)
	}
	tok2, _, err := b.client.Refresh(t.Context(), g2, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the kept registration: %v", err)
	}
	requireAccepted(t, b.mcp.URL, tok2)
}

// TestRefreshErrorSentWith200IsClassifiedByItsCode: an AS answering an error with HTTP 200 (GitHub
// does) is classified by its `error` field, not as a malformed token response, and the grant records
// the deviation.
func TestRefreshErrorSentWith200IsClassifiedByItsCode(t *testing.T) {
	b := newBench(t, benchOptions{})
	tok, g := b.signIn(t, SignInOptions{})
	for _, c := range []struct {
		body  string
		class Class
	}{
		{`{"error":"invalid_grant","error_description":"expired"}`, ClassReauth},
		{`{"error":"temporarily_unavailable"}`, ClassTransient},
		{`{"error":"invalid_scope"}`, ClassMisconfigured},
	} {
		b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 200, Body: c.body})
		_, g2, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
		var oe *Error
		if !errors.As(err, &oe) || oe.Class != c.class || oe.Code == "" || oe.Status != 200 {
			t.Errorf("Refresh answered 200 %s = %#v, want class %v with the code", c.body, err, c.class)
		}
		if !g2.HasQuirk(QuirkErrorsIn200) {
			t.Errorf("grant quirks %q lack errors-in-200", g2.Quirks)
		}
	}
}
