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

// errRetrying answers a callback whose sign-in goes on with a new authorization request: the page asks
// the user to continue in the new browser tab.
var errRetrying = errors.New("oauth: asking the authorization server again")

// authorize runs the browser round trip on lb and the code exchange, and returns g updated with what
// it learned. When the AS refuses `resource` on the authorization request (Entra v2: AADSTS9010010 as
// an error on the redirect) it asks once more without it, on the same listener and port; the user may
// have to approve a second time, which is the price of not knowing in advance. When the token endpoint
// says the client is evicted (clientEvicted) and reregister is set, it registers a new client through
// reregister, once, and asks once more the same way. It answers each callback's page only once it
// knows what comes next, so that the page tells the truth ("One more step" for a retry, through
// errRetrying), but leaves lb open: the caller closes it.
func (c *Client) authorize(ctx context.Context, as *ASMetadata, g Grant, lb *loopback, opts SignInOptions, reregister func(Grant) (Grant, error)) (Token, Grant, error) {
	for {
		lb.rearm() // a listener may come from an earlier round trip whose callback was answered
		verifier, state := randomString(32), randomString(16)
		authURL, err := authorizationURL(g, lb.redirectURI(), verifier, state)
		if err != nil {
			return Token{}, g, err
		}
		cb, err := c.await(ctx, g, lb, authURL, c.present(authURL, opts))
		if err != nil {
			return Token{}, g, err
		}
		res, err := c.completeAuthorization(ctx, as, g, cb.query, state, verifier, lb.redirectURI())
		g = res.teach(g)
		if err != nil && !g.OmitResource && rejectsResource(err) {
			g.OmitResource, g.Quirks = true, withQuirk(g.Quirks, QuirkResourceOmitted)
			cb.reply <- errRetrying
			continue
		}
		if err != nil && reregister != nil && clientEvicted(err) {
			next, rerr := reregister(g)
			reregister = nil
			if rerr == nil {
				g = next
				cb.reply <- errRetrying
				continue
			}
			g, err = next, rerr
		}
		if err == nil {
			g, err = learn(as.Issuer, g, cb.query.Get("iss"), res)
		}
		cb.reply <- err
		if err != nil {
			return Token{}, g, err
		}
		return res.tok, g, nil
	}
}

// learn records in g what a successful token answer taught: what every answer teaches (issued.teach),
// the concrete tenant of a templated issuer (checked: a token from another tenant than the callback
// named is a mix-up), and that the token never expires.
func learn(issuer string, g Grant, callbackIss string, res issued) (Grant, error) {
	g = res.teach(g)
	if isTemplate(issuer) {
		tenant, err := resolveTenant(issuer, callbackIss, res)
		if err != nil {
			return g, err
		}
		g.TenantIssuer = tenant
	}
	if res.tok.Expiry.IsZero() {
		g.Quirks = withQuirk(g.Quirks, QuirkNoExpiry)
	}
	return g, nil
}

// present hands the authorization URL to opts.OnURL, then to the Opener in a goroutine of its own:
// pkg/browser waits for xdg-open, which in its generic mode runs the browser in the foreground until it
// exits, so the call may not return until long after the sign-in. The goroutine of an opener that
// never returns is leaked; nothing can interrupt it. The channel receives the opener's result; it is
// nil without an opener.
func (c *Client) present(authURL string, opts SignInOptions) <-chan error {
	if opts.OnURL != nil {
		opts.OnURL(authURL)
	}
	if c.opener == nil {
		return nil
	}
	opened := make(chan error, 1)
	go func() { opened <- c.opener.Open(authURL) }()
	return opened
}

// await waits for the callback, the caller, or the sign-in timeout. An opener's failure does not end
// the wait (the user may paste the URL); it is named in the timeout error, without the URL.
func (c *Client) await(ctx context.Context, g Grant, lb *loopback, authURL string, opened <-chan error) (callback, error) {
	timeout := c.after(c.timeout)
	var openErr error
	for {
		select {
		case cb := <-lb.got:
			return cb, nil
		case err := <-opened:
			opened, openErr = nil, err
		case <-ctx.Done():
			return callback{}, ctx.Err()
		case <-timeout:
			if openErr != nil {
				msg := strings.ReplaceAll(openErr.Error(), authURL, "[the sign-in URL]")
				return callback{}, fmt.Errorf("sign in to %s after %v (the browser could not be opened: %s): %w", RedactURL(g.Resource), c.timeout, msg, ErrSignInTimeout)
			}
			return callback{}, fmt.Errorf("sign in to %s after %v: %w", RedactURL(g.Resource), c.timeout, ErrSignInTimeout)
		}
	}
}

// completeAuthorization validates the authorization response (RFC 9207 iss first: on a mix-up nothing
// else in the response is trusted, not even its error) and redeems the code.
func (c *Client) completeAuthorization(ctx context.Context, as *ASMetadata, g Grant, q url.Values, state, verifier, redirectURI string) (issued, error) {
	if err := checkIss(as, q); err != nil {
		return issued{}, err
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return issued{}, ErrStateMismatch
	}
	if code := q.Get("error"); code != "" {
		return issued{}, &Error{Op: "authorize", Code: code, Description: truncate(q.Get("error_description"), 512), Class: Classify(code, 400)}
	}
	code := q.Get("code")
	if code == "" {
		return issued{}, &Error{Op: "authorize", Class: ClassMisconfigured, Err: errors.New("authorization response has neither code nor error")}
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}
	return c.tokenRequest(ctx, "token exchange", g, form, g.Scopes, false)
}

// checkIss applies RFC 9207 §2.4 against the issuer the grant is bound to (the metadata's, even when
// the resource advertised another): when the AS advertises the parameter it must be present; when
// present it must equal the issuer exactly — or, for a templated issuer, be one concrete tenant's.
func checkIss(as *ASMetadata, q url.Values) error {
	iss, present := q["iss"]
	switch {
	case present && (len(iss) != 1 || !issMatches(as.Issuer, iss[0])):
		return fmt.Errorf("%w: authorization response from %q, expected %q", ErrIssuerMismatch, strings.Join(iss, ","), as.Issuer)
	case !present && as.AuthorizationResponseIssParameterSupported:
		return fmt.Errorf("%w: authorization response lacks iss although %s advertises it", ErrIssuerMismatch, as.Issuer)
	}
	return nil
}

// issMatches compares an RFC 9207 iss with the issuer: exactly (§2.4: simple string comparison), or as
// one concrete tenant of a templated issuer.
func issMatches(issuer, iss string) bool {
	if isTemplate(issuer) {
		return concreteTenant(issuer, iss)
	}
	return iss == issuer
}

// authorizationURL builds the RFC 6749 §4.1.1 request with PKCE (RFC 7636 §4.3), RFC 8707 resource and
// the grant's extra parameters.
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
		q.Set("scope", strings.Join(requestScopes(g.Scopes), " "))
	}
	if !g.OmitResource && g.Resource != "" {
		q.Set("resource", g.Resource)
	}
	addExtraParams(q, g.ExtraParams)
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
