package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// Refresh redeems refreshToken at the grant's token endpoint (RFC 6749 §6) and returns the new token and
// the grant, updated when it learned something the engine must persist:
//   - OmitResource, when the AS rejected `resource` and the retry without it succeeded;
//   - a new client, when the AS answered invalid_client (or unauthorized_client) for a dynamically
//     registered client: the client is registered again (once) and the error is returned, because the
//     old refresh token was bound to the evicted client and a sign-in is now needed. A bare 401 is
//     returned as ClassClientInvalid but keeps the registration (see clientEvicted).
//
// The new token keeps refreshToken when the AS issued none. Refresh never retries with the same refresh
// token: on a rotating AS a replay is reuse, and reuse revokes the whole grant. Single-flight is the
// caller's job. Errors are *Error; errors.Is(err, ErrReauthRequired) means sign in again.
func (c *Client) Refresh(ctx context.Context, g Grant, refreshToken string) (Token, Grant, error) {
	if refreshToken == "" {
		return Token{}, g, &Error{Op: "refresh", Class: ClassReauth, Err: errors.New("no refresh token")}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	tok, omitted, err := c.tokenRequest(ctx, "refresh", g, form, g.Scopes)
	if omitted {
		g.OmitResource = true
	}
	if err != nil {
		if clientEvicted(err) && g.Registration == RegistrationDynamic {
			if ng, rerr := c.reregister(ctx, g); rerr == nil {
				g = ng
			} else {
				err = fmt.Errorf("%w (re-registration failed: %v)", err, rerr)
			}
		}
		return Token{}, g, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, g, nil
}
