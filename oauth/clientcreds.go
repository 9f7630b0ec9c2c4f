package oauth

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
)

// ClientCredentials obtains a token for the probed server with the client_credentials grant (RFC 6749
// §4.4): a machine identity acting for itself — no browser, no user, no refresh token. sc must carry a
// secret (sent as client_secret_basic or _post, see StaticClient.AuthMethod) or a private key
// (private_key_jwt, RFC 7523 §2.2). opts.Scopes replaces the probe's scopes and opts.ExtraScopes and
// opts.ExtraParams are added as for SignIn; offline_access is never asked for (no refresh token is
// issued to this grant). The returned grant has GrantType GrantClientCredentials: Refresh renews it by
// asking again.
func (c *Client) ClientCredentials(ctx context.Context, p *Probe, sc StaticClient, opts SignInOptions) (Token, Grant, error) {
	if sc.Secret == "" && sc.PrivateKey == "" {
		return Token{}, Grant{}, &Error{Op: "client credentials", Class: ClassMisconfigured,
			Err: errors.New("the client_credentials grant needs a client secret or a private key")}
	}
	opts.Client, opts.Previous = &sc, nil
	g, err := c.chooseClient(p, opts)
	if err != nil {
		return Token{}, Grant{}, err
	}
	if g.AuthMethod == AuthNone {
		return Token{}, g, &Error{Op: "client credentials", Class: ClassMisconfigured,
			Err: errors.New("the client_credentials grant needs client authentication, not none")}
	}
	g.GrantType, g.RedirectPort = GrantClientCredentials, 0
	g.Scopes = slices.DeleteFunc(g.Scopes, func(s string) bool { return s == "offline_access" })
	return c.clientCredentials(ctx, g)
}

// clientCredentials asks the token endpoint for a token as g's client (RFC 6749 §4.4.2), with
// `resource`, the grant's scopes and extra parameters. A token without expires_in gets the default
// lifetime: asking again costs nothing, so there is no reason to keep one past it.
func (c *Client) clientCredentials(ctx context.Context, g Grant) (Token, Grant, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(g.Scopes) > 0 {
		form.Set("scope", strings.Join(requestScopes(g.Scopes), " "))
	}
	res, err := c.tokenRequest(ctx, "client credentials", g, form, g.Scopes, true)
	g = res.teach(g)
	if err != nil {
		return Token{}, g, err
	}
	res.tok.RefreshToken = "" // RFC 6749 §4.4.3: none should be issued; never keep one
	return res.tok, g, nil
}
