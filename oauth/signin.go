package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sign-in failures that are not an AS's answer.
var (
	// ErrSignInTimeout: the browser did not come back within Config.SignInTimeout.
	ErrSignInTimeout = errors.New("oauth: sign-in timed out waiting for the browser")
	// ErrStateMismatch: the callback's state is not ours (RFC 6749 §10.12): a forged or stale response.
	ErrStateMismatch = errors.New("oauth: authorization response state mismatch")
)

// SignInOptions tunes one sign-in. The zero value registers automatically and requests the probe's scopes.
type SignInOptions struct {
	// Client is a client id the user registered by hand; it takes precedence over every other route.
	Client *StaticClient
	// Previous is the server's current grant; its registration is reused when it belongs to the same
	// issuer and resource.
	Previous *Grant
	// Scopes replaces the probe's scopes, e.g. with a step-up union from StepUpScopes.
	Scopes []string
}

// SignIn runs an interactive authorization-code sign-in through the browser (RFC 8252 loopback redirect,
// PKCE S256, state, RFC 8707 resource, RFC 9207 iss). At most one runs per server at a time
// (ErrSignInInProgress). It returns the token and the grant to persist. If a reused dynamic
// registration turns out evicted (invalid_client at the token endpoint) it registers again and asks the
// browser once more.
func (c *Client) SignIn(ctx context.Context, p *Probe, opts SignInOptions) (Token, Grant, error) {
	if c.opener == nil {
		return Token{}, Grant{}, ErrNoOpener
	}
	if p == nil {
		return Token{}, Grant{}, errors.New("oauth: SignIn needs a probe")
	}
	if err := c.begin(p.Resource); err != nil {
		return Token{}, Grant{}, err
	}
	defer c.end(p.Resource)
	g, err := c.clientFor(ctx, p, opts)
	if err != nil {
		return Token{}, Grant{}, err
	}
	reused := opts.Client == nil && opts.Previous != nil && g.ClientID == opts.Previous.ClientID
	tok, g, err := c.authorize(ctx, p.AuthServer, g)
	if err != nil && reused && g.Registration == RegistrationDynamic && clientEvicted(err) {
		if g, err = c.reregister(ctx, g); err != nil {
			return Token{}, g, err
		}
		tok, g, err = c.authorize(ctx, p.AuthServer, g)
	}
	return tok, g, err
}

// authorize runs one browser round trip and the code exchange.
func (c *Client) authorize(ctx context.Context, as *ASMetadata, g Grant) (Token, Grant, error) {
	lb, err := listenLoopback(g.RedirectPort)
	if err != nil {
		return Token{}, g, err
	}
	verifier, state := randomString(32), randomString(16)
	authURL, err := authorizationURL(g, lb.redirectURI(), verifier, state)
	if err != nil {
		lb.close(err, false)
		return Token{}, g, err
	}
	if err := c.opener.Open(authURL); err != nil {
		lb.close(err, false)
		return Token{}, g, fmt.Errorf("open browser: %w", err)
	}
	var cb callback
	select {
	case cb = <-lb.got:
	case <-ctx.Done():
		lb.close(ctx.Err(), false)
		return Token{}, g, ctx.Err()
	case <-c.after(c.timeout):
		lb.close(ErrSignInTimeout, false)
		return Token{}, g, fmt.Errorf("sign in to %s after %v: %w", g.Resource, c.timeout, ErrSignInTimeout)
	}
	tok, omitted, err := c.completeAuthorization(ctx, as, g, cb.query, state, verifier, lb.redirectURI())
	if omitted {
		g.OmitResource = true
	}
	cb.reply <- err
	lb.close(err, g.RedirectPort == 0)
	return tok, g, err
}

// completeAuthorization validates the authorization response (RFC 9207 iss first: on a mix-up nothing
// else in the response is trusted, not even its error) and redeems the code.
func (c *Client) completeAuthorization(ctx context.Context, as *ASMetadata, g Grant, q url.Values, state, verifier, redirectURI string) (Token, bool, error) {
	if err := checkIss(as, q); err != nil {
		return Token{}, false, err
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return Token{}, false, ErrStateMismatch
	}
	if code := q.Get("error"); code != "" {
		return Token{}, false, &Error{Op: "authorize", Code: code, Description: truncate(q.Get("error_description"), 512), Class: Classify(code, 400)}
	}
	code := q.Get("code")
	if code == "" {
		return Token{}, false, &Error{Op: "authorize", Class: ClassMisconfigured, Err: errors.New("authorization response has neither code nor error")}
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	return c.tokenRequest(ctx, "token exchange", g, form, g.Scopes)
}

// checkIss applies RFC 9207 §2.4: when the AS advertises the parameter it must be present; when present
// it must equal the issuer exactly.
func checkIss(as *ASMetadata, q url.Values) error {
	iss, present := q["iss"]
	switch {
	case present && (len(iss) != 1 || iss[0] != as.Issuer):
		return fmt.Errorf("%w: authorization response from %q, expected %q", ErrIssuerMismatch, strings.Join(iss, ","), as.Issuer)
	case !present && as.AuthorizationResponseIssParameterSupported:
		return fmt.Errorf("%w: authorization response lacks iss although %s advertises it", ErrIssuerMismatch, as.Issuer)
	}
	return nil
}

// authorizationURL builds the RFC 6749 §4.1.1 request with PKCE (RFC 7636 §4.3) and RFC 8707 resource.
func authorizationURL(g Grant, redirectURI, verifier, state string) (string, error) {
	u, err := url.Parse(g.AuthorizationEndpoint)
	if err != nil {
		return "", fmt.Errorf("authorization endpoint: %w", err)
	}
	sum := sha256.Sum256([]byte(verifier))
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", g.ClientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("state", state)
	q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	q.Set("code_challenge_method", "S256")
	if len(g.Scopes) > 0 {
		q.Set("scope", strings.Join(g.Scopes, " "))
	}
	if !g.OmitResource && g.Resource != "" {
		q.Set("resource", g.Resource)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// randomString returns n random bytes, base64url-encoded (a 32-byte PKCE verifier gives 43 characters,
// RFC 7636 §4.1).
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
