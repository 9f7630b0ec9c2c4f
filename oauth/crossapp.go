package oauth

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
)

// Grant types and token types of enterprise-managed authorization (MCP's cross-app access extension,
// SEP-990: draft-ietf-oauth-identity-assertion-authz-grant).
const (
	// GrantJWTBearer: tokens obtained with an identity assertion (RFC 7523 §2.1). Renewing needs a
	// new assertion from the user's IdP, so such a grant cannot be refreshed without the user's
	// IdP session: Refresh answers ErrReauthRequired when the AS issued no refresh token.
	GrantJWTBearer GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

	tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	idTokenType        = "urn:ietf:params:oauth:token-type:id_token"
	idJAGType          = "urn:ietf:params:oauth:token-type:id-jag"
)

// EnterpriseIdP is the user's enterprise identity provider for cross-app access: where authkeeper
// exchanges the user's ID token for an Identity Assertion JWT Authorization Grant (ID-JAG). String
// redacts the ID token and secret.
type EnterpriseIdP struct {
	// IDToken is the user's OpenID Connect ID token from the IdP (a secret).
	IDToken string
	// TokenEndpoint is the IdP's token endpoint, which performs the RFC 8693 token exchange.
	TokenEndpoint string
	// ClientID and ClientSecret identify authkeeper at the IdP; the secret may be empty (a public
	// client), else it is sent as client_secret_basic.
	ClientID, ClientSecret string
}

func (i EnterpriseIdP) String() string {
	return "EnterpriseIdP{token_endpoint=" + i.TokenEndpoint + " client=" + i.ClientID + " id_token=" + redact(i.IDToken) + " secret=" + redact(i.ClientSecret) + "}"
}

// GoString makes %#v as safe as %v.
func (i EnterpriseIdP) GoString() string { return i.String() }

// CrossAppAccess signs in without a browser through the user's enterprise IdP: the IdP exchanges the
// user's ID token for an ID-JAG naming the MCP server's AS as audience and the server as resource
// (RFC 8693 §2.1), and the AS redeems it for an access token with the jwt-bearer grant (RFC 7523 §2.1),
// sc authenticating the client at the AS as for ClientCredentials. opts.Scopes, ExtraScopes and
// ExtraParams apply as for SignIn. The grant has GrantType GrantJWTBearer and records the IdP client
// (never the ID token).
func (c *Client) CrossAppAccess(ctx context.Context, p *Probe, sc StaticClient, idp EnterpriseIdP, opts SignInOptions) (Token, Grant, error) {
	if idp.IDToken == "" || idp.TokenEndpoint == "" || idp.ClientID == "" {
		return Token{}, Grant{}, &Error{Op: "cross-app access", Class: ClassMisconfigured,
			Err: errors.New("cross-app access needs the IdP's token endpoint, client id and the user's ID token")}
	}
	opts.Client, opts.Previous = &sc, nil
	g, err := c.chooseClient(p, opts)
	if err != nil {
		return Token{}, Grant{}, err
	}
	g.GrantType, g.RedirectPort = GrantJWTBearer, 0
	g.IdPTokenEndpoint, g.IdPClientID, g.IdPClientSecret = idp.TokenEndpoint, idp.ClientID, idp.ClientSecret
	g.Scopes = slices.DeleteFunc(g.Scopes, func(s string) bool { return s == "offline_access" })

	// RFC 8693 §2.1 at the IdP: the ID-JAG is the exchanged token, whatever token_type it declares
	// ("N_A": it is no access token).
	form := url.Values{
		"grant_type":           {tokenExchangeGrant},
		"requested_token_type": {idJAGType},
		"subject_token":        {idp.IDToken},
		"subject_token_type":   {idTokenType},
		"audience":             {g.Issuer},
		"resource":             {g.Resource},
	}
	if len(g.Scopes) > 0 {
		form.Set("scope", strings.Join(requestScopes(g.Scopes), " "))
	}
	idpAuth := clientAuth{id: idp.ClientID, secret: idp.ClientSecret, method: AuthNone}
	if idp.ClientSecret != "" {
		idpAuth.method = AuthClientSecretBasic
	}
	var ex struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
	}
	if err := c.postForm(ctx, "token exchange at the IdP", idp.TokenEndpoint, form, idpAuth, &ex); err != nil {
		return Token{}, g, err
	}
	if ex.AccessToken == "" || ex.IssuedTokenType != idJAGType {
		return Token{}, g, &Error{Op: "token exchange at the IdP", Class: ClassMisconfigured,
			Err: errors.New("the IdP did not issue an identity assertion grant (issued_token_type " + truncate(ex.IssuedTokenType, 80) + ")")}
	}

	// RFC 7523 §2.1 at the AS.
	grant := url.Values{"grant_type": {string(GrantJWTBearer)}, "assertion": {ex.AccessToken}}
	if len(g.Scopes) > 0 {
		grant.Set("scope", strings.Join(requestScopes(g.Scopes), " "))
	}
	res, err := c.tokenRequest(ctx, "jwt-bearer grant", g, grant, g.Scopes, false)
	if err != nil {
		return Token{}, res.teach(g), err
	}
	if g, err = learn(g.Issuer, g, "", res); err != nil {
		return Token{}, g, err
	}
	return res.tok, g, nil
}
