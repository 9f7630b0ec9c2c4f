package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// ErrClientIDRequired: the AS offers no automatic registration route, so the user must supply a client
// id (SignInOptions.Client).
var ErrClientIDRequired = errors.New("oauth: the authorization server needs a client id registered by hand")

// StaticClient is a client registered by hand, as Entra ID and other enterprise IdPs require.
type StaticClient struct {
	// ID is the client id. Required.
	ID string
	// Secret is the client secret of a confidential client. Default: none (a public client).
	Secret string
	// AuthMethod is the token endpoint authentication method. Default: client_secret_basic with a
	// Secret, none without.
	AuthMethod AuthMethod
	// RedirectPort is the loopback port registered with the client. Default: 0, any free port.
	RedirectPort int
}

// redirectPath is the callback path; DCR registers http://127.0.0.1/callback without a port, which
// RFC 8252 §7.3 obliges the AS to accept with any port.
const redirectPath = "/callback"

// deviceGrantType is RFC 8628's grant type.
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// clientFor binds a client to the probed server, in the spec's order: a user-supplied id, the previous
// registration if it belongs to the same issuer, a Client ID Metadata Document, dynamic registration.
func (c *Client) clientFor(ctx context.Context, p *Probe, opts SignInOptions) (Grant, error) {
	if p == nil || p.Requirement != OAuthSignIn || p.AuthServer == nil {
		return Grant{}, &Error{Op: "sign in", Class: ClassMisconfigured, Err: errors.New("the probe found no OAuth sign-in for this server")}
	}
	as := p.AuthServer
	g := Grant{
		Resource: p.Resource, Issuer: as.Issuer, AuthorizationEndpoint: as.AuthorizationEndpoint,
		TokenEndpoint: as.TokenEndpoint, RevocationEndpoint: as.RevocationEndpoint,
		DeviceAuthorizationEndpoint: as.DeviceAuthorizationEndpoint, RegistrationEndpoint: as.RegistrationEndpoint,
		Scopes: slices.Clone(p.Scopes),
	}
	if len(opts.Scopes) > 0 {
		// A step-up union holds the scopes granted, which may lack offline_access: keep asking for it.
		g.Scopes = chooseScopes(opts.Scopes, nil, as.ScopesSupported)
	}
	prev := opts.Previous
	switch {
	case opts.Client != nil:
		sc := opts.Client
		if sc.ID == "" {
			return Grant{}, &Error{Op: "sign in", Class: ClassMisconfigured, Err: errors.New("static client has no id")}
		}
		g.ClientID, g.ClientSecret, g.AuthMethod, g.RedirectPort = sc.ID, sc.Secret, sc.AuthMethod, sc.RedirectPort
		if g.AuthMethod == "" {
			g.AuthMethod = AuthNone
			if sc.Secret != "" {
				g.AuthMethod = AuthClientSecretBasic
			}
		}
		g.Registration = RegistrationStatic
	case prev != nil && prev.ClientID != "" && sameIssuer(prev.Issuer, as.Issuer) && prev.Resource == g.Resource:
		// Registrations are bound to the issuing AS: reuse only for the same issuer.
		g.ClientID, g.ClientSecret, g.AuthMethod, g.RedirectPort = prev.ClientID, prev.ClientSecret, prev.AuthMethod, prev.RedirectPort
		g.Registration, g.OmitResource = prev.Registration, prev.OmitResource
	case p.Registration == RegistrationMetadataDocument && c.cimdURL != "":
		g.ClientID, g.AuthMethod, g.Registration = c.cimdURL, AuthNone, RegistrationMetadataDocument
	case as.RegistrationEndpoint != "":
		return c.reregister(ctx, g)
	default:
		return Grant{}, &Error{Op: "register", Class: ClassMisconfigured, Err: ErrClientIDRequired}
	}
	return g, nil
}

// reregister registers a new client dynamically (RFC 7591) and returns g bound to it.
func (c *Client) reregister(ctx context.Context, g Grant) (Grant, error) {
	if g.RegistrationEndpoint == "" {
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: ErrClientIDRequired}
	}
	grants := []string{"authorization_code", "refresh_token"}
	if g.DeviceAuthorizationEndpoint != "" {
		grants = append(grants, deviceGrantType)
	}
	body, err := json.Marshal(map[string]any{
		"client_name":                c.name,
		"application_type":           "native",
		"redirect_uris":              []string{"http://127.0.0.1" + redirectPath},
		"grant_types":                grants,
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
	if err != nil {
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: err}
	}
	if err := checkURL(g.RegistrationEndpoint); err != nil {
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	var reg struct {
		ClientID     string     `json:"client_id"`
		ClientSecret string     `json:"client_secret"`
		AuthMethod   AuthMethod `json:"token_endpoint_auth_method"`
	}
	if err := c.do("register", req, &reg); err != nil {
		return g, err
	}
	if reg.ClientID == "" {
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: errors.New("registration response has no client_id")}
	}
	g.ClientID, g.ClientSecret, g.AuthMethod = reg.ClientID, reg.ClientSecret, reg.AuthMethod
	if g.AuthMethod == "" {
		g.AuthMethod = AuthNone // RFC 7591 §2: the default would be client_secret_basic, but we asked for none
		if g.ClientSecret != "" {
			g.AuthMethod = AuthClientSecretBasic
		}
	}
	switch g.AuthMethod {
	case AuthNone, AuthClientSecretBasic, AuthClientSecretPost:
	default:
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: fmt.Errorf("unsupported token_endpoint_auth_method %q", g.AuthMethod)}
	}
	g.Registration, g.RedirectPort = RegistrationDynamic, 0
	return g, nil
}
