package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// clientAuth authenticates a request as the grant's client in its registered way.
type clientAuth struct {
	id, secret string
	method     AuthMethod
}

func authOf(g Grant) clientAuth {
	return clientAuth{id: g.ClientID, secret: g.ClientSecret, method: g.AuthMethod}
}

// apply puts the client's credentials in the body: always client_id unless Basic carries it (a public
// client must send it, RFC 6749 §3.2.1), plus the secret for client_secret_post.
func (a clientAuth) apply(form url.Values) {
	switch a.method {
	case AuthClientSecretBasic:
		if a.secret == "" {
			form.Set("client_id", a.id)
		}
	case AuthClientSecretPost:
		form.Set("client_id", a.id)
		form.Set("client_secret", a.secret)
	default:
		form.Set("client_id", a.id)
	}
}

// applyHeader sets HTTP Basic for client_secret_basic, form-encoding both parts as RFC 6749 §2.3.1 asks.
func (a clientAuth) applyHeader(req *http.Request) {
	if a.method == AuthClientSecretBasic && a.secret != "" {
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	}
}

// tokenRequest POSTs form to the grant's token endpoint, adding `resource` unless the grant omits it
// (RFC 8707 §2.2: on every token request, refresh included). When the AS rejects `resource` the way
// Entra v2 does, it retries once without it and reports so through omitted, for the grant to remember.
func (c *Client) tokenRequest(ctx context.Context, op string, g Grant, form url.Values, requested []string) (tok Token, omitted bool, err error) {
	send := func(withResource bool) (Token, error) {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if withResource && g.Resource != "" {
			f.Set("resource", g.Resource)
		}
		var tr tokenResponse
		if err := c.postForm(ctx, op, g.TokenEndpoint, f, authOf(g), &tr); err != nil {
			return Token{}, err
		}
		if tr.AccessToken == "" {
			return Token{}, &Error{Op: op, Class: ClassMisconfigured, Err: errors.New("token response has no access_token")}
		}
		if tt := strings.ToLower(tr.TokenType); tt != "" && tt != "bearer" {
			// RFC 6749 §7.1: a client must not use a token type it does not understand (DPoP, MAC, ...).
			return Token{}, &Error{Op: op, Class: ClassMisconfigured, Err: errors.New("unsupported token_type " + tr.TokenType)}
		}
		return tr.token(c.clock.Now(), requested, c.lifetime), nil
	}
	tok, err = send(!g.OmitResource)
	if err != nil && !g.OmitResource && rejectsResource(err) {
		tok, err = send(false)
		return tok, err == nil, err
	}
	return tok, false, err
}

// rejectsResource reports Entra v2's refusal of the `resource` parameter (AADSTS9010010). This is the
// one place a provider code is read, as the issue allows: it only decides to retry without `resource`;
// classification still comes from the `error` field.
func rejectsResource(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest && strings.Contains(e.Description, "AADSTS9010010")
}
