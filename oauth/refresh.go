package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Refresh renews the grant's access token and returns the new token and the grant, updated when it
// learned something the engine must persist:
//   - OmitResource, when the AS rejected `resource` and the retry without it succeeded;
//   - ScopeOnRefresh, when the AS refused a refresh without scope (Entra v2, AADSTS90014) and the
//     retry with the grant's requested scopes succeeded (a request refused as invalid spends nothing);
//   - Rotation: rotating when the AS returned a new refresh token, fixed when none or the same;
//   - QuirkErrorsIn200, when the AS answered an OAuth error with HTTP 200 (also on a failed refresh:
//     the grant returned with the error carries it);
//   - a new client, when the AS answered invalid_client (or unauthorized_client) for a dynamically
//     registered client: the client is registered again (once, on a free loopback port) and the
//     error is returned, because the old refresh token was bound to the evicted client and a sign-in
//     is now needed. A bare 401 is returned as ClassClientInvalid but keeps the registration (see
//     clientEvicted).
//
// For an authorization-code grant it redeems refreshToken (RFC 6749 §6), sending the requested scopes
// when g.ScopeOnRefresh; the new token keeps refreshToken when the AS issued none. Refresh never
// retries with the same refresh token once the AS may have spent it: on a rotating AS a replay is
// reuse, and reuse revokes the whole grant. For a GrantClientCredentials grant it asks for a new token
// with the client's credentials (refreshToken is ignored). Single-flight is the caller's job. Errors
// are *Error; errors.Is(err, ErrReauthRequired) means sign in again.
func (c *Client) Refresh(ctx context.Context, g Grant, refreshToken string) (Token, Grant, error) {
	if g.GrantType == GrantClientCredentials {
		return c.clientCredentials(ctx, g)
	}
	if refreshToken == "" {
		return Token{}, g, &Error{Op: "refresh", Class: ClassReauth, Err: errors.New("no refresh token")}
	}
	send := func(withScope bool) (issued, error) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
		if withScope && len(g.Scopes) > 0 {
			// The scopes requested, never the ones granted: Entra grants the expansion of a
			// `.default` scope, and replaying it with `.default` is refused (AADSTS70011).
			form.Set("scope", strings.Join(requestScopes(g.Scopes), " "))
		}
		return c.tokenRequest(ctx, "refresh", g, form, g.Scopes, true)
	}
	res, err := send(g.ScopeOnRefresh)
	if err != nil && !g.ScopeOnRefresh && len(g.Scopes) > 0 && wantsScope(err) {
		// Both refusals came before the AS looked at the refresh token (a malformed request), so the
		// token is unspent and may be sent again. An omission of `resource` learned by the first send
		// holds for the second: the AS is not asked again what it already refused.
		g = res.teach(g)
		if res, err = send(true); err == nil {
			g.ScopeOnRefresh, g.Quirks = true, withQuirk(g.Quirks, QuirkScopeOnRefresh)
		}
	}
	g = res.teach(g)
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
	tok := res.tok
	switch {
	case !res.refreshIssued || tok.RefreshToken == refreshToken:
		tok.RefreshToken, g.Rotation = refreshToken, RotationFixed
	default:
		g.Rotation = RotationRotating
	}
	return tok, g, nil
}
