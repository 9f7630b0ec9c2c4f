package oauth

import (
	"context"
	"errors"
	"net/url"
)

// ErrRevocationUnsupported: the AS advertises no revocation endpoint; the tokens can only be forgotten.
var ErrRevocationUnsupported = errors.New("oauth: authorization server has no revocation endpoint")

// Revoke revokes the token's refresh token, then its access token (RFC 7009 §2.1), when the user removes
// a server or signs out. Revoking the refresh token first matters: most servers then drop the whole
// grant. Both are attempted; an AS that cannot revoke a self-contained access token
// (unsupported_token_type) is not an error; the first failure is returned as an *Error. An AS answers 200 for tokens
// it no longer knows (§2.2), so revoking twice is harmless.
func (c *Client) Revoke(ctx context.Context, g Grant, tok Token) error {
	if g.RevocationEndpoint == "" {
		return ErrRevocationUnsupported
	}
	var first error
	for _, t := range []struct{ value, hint string }{
		{tok.RefreshToken, "refresh_token"},
		{tok.AccessToken, "access_token"},
	} {
		if t.value == "" {
			continue
		}
		form := url.Values{"token": {t.value}, "token_type_hint": {t.hint}}
		err := c.postForm(ctx, "revoke "+t.hint, g.RevocationEndpoint, form, c.authOf(g), nil)
		var oe *Error
		if errors.As(err, &oe) && oe.Code == "unsupported_token_type" && t.hint == "access_token" {
			// §2.2.1: the AS cannot revoke this kind (a self-contained JWT); it dies at its expiry.
			err = nil
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}
