package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
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
	// AuthMethod is the token endpoint authentication method. Default: private_key_jwt with a
	// PrivateKey; with a Secret, client_secret_basic when the AS lists it in
	// token_endpoint_auth_methods_supported or lists nothing, else client_secret_post when listed;
	// none without either.
	AuthMethod AuthMethod
	// RedirectPort is the loopback port registered with the client. Default: 0, any free port.
	RedirectPort int
	// PrivateKey is the PEM (PKCS #8, PKCS #1 or SEC 1) private key of a private_key_jwt client, RSA or
	// ECDSA P-256. Default: none.
	PrivateKey string
	// KeyID is the `kid` header of the client assertions, when the AS needs it to pick the key.
	// Default: none.
	KeyID string
}

// redirectPath is the callback path. DCR registers it with the exact port of the loopback listener
// (http://127.0.0.1:PORT/callback): RFC 8252 §7.3 obliges an AS to accept any port, but servers that
// compare redirect URIs exactly (workers-oauth-provider before 0.2.4, several enterprise IdPs) do not.
const redirectPath = "/callback"

// deviceGrantType is RFC 8628's grant type.
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// chooseClient binds a client to the probed server without registering, in the spec's order: a
// user-supplied id, the previous registration if it belongs to the same issuer, a Client ID Metadata
// Document, dynamic registration. For the last it returns the grant with Registration
// RegistrationDynamic and no ClientID: the caller registers once it knows the redirect port.
func (c *Client) chooseClient(p *Probe, opts SignInOptions) (Grant, error) {
	if p == nil || p.Requirement != OAuthSignIn || p.AuthServer == nil {
		return Grant{}, &Error{Op: "sign in", Class: ClassMisconfigured, Err: errors.New("the probe found no OAuth sign-in for this server")}
	}
	if err := checkExtraParams(opts.ExtraParams); err != nil {
		return Grant{}, err
	}
	as := p.AuthServer
	g := Grant{
		Resource: p.Resource, Issuer: as.Issuer, AuthorizationEndpoint: as.AuthorizationEndpoint,
		TokenEndpoint: as.TokenEndpoint, RevocationEndpoint: as.RevocationEndpoint,
		DeviceAuthorizationEndpoint: as.DeviceAuthorizationEndpoint, RegistrationEndpoint: as.RegistrationEndpoint,
		AdvertisedIssuer: p.AdvertisedIssuer, Quirks: slices.Clone(p.Quirks),
		ScopeOnRefresh: slices.Contains(p.Quirks, QuirkScopeOnRefresh), ExtraParams: maps.Clone(opts.ExtraParams),
	}
	scopes := p.Scopes
	if len(opts.Scopes) > 0 {
		// A step-up union holds the scopes granted, which may lack offline_access: keep asking for it.
		scopes = chooseScopes(opts.Scopes, nil, as.ScopesSupported)
	}
	g.Scopes = requestScopes(unionScopes(scopes, opts.ExtraScopes))
	prev := opts.Previous
	if prev != nil && (!sameIssuer(prev.Issuer, as.Issuer) || !SameResource(prev.Resource, g.Resource)) {
		prev = nil // registrations are bound to the issuing AS: reuse only for the same issuer
	}
	if prev != nil {
		// What earlier exchanges learned about this AS holds for the next sign-in too.
		g.OmitResource, g.Rotation = prev.OmitResource, prev.Rotation
		g.ScopeOnRefresh = g.ScopeOnRefresh || prev.ScopeOnRefresh
		for _, q := range prev.Quirks {
			if q == QuirkResourceOmitted || q == QuirkScopeOnRefresh {
				g.Quirks = withQuirk(g.Quirks, q)
			}
		}
		if g.ExtraParams == nil {
			g.ExtraParams = maps.Clone(prev.ExtraParams)
		}
	}
	switch {
	case opts.Client != nil:
		sc := opts.Client
		if sc.ID == "" {
			return Grant{}, &Error{Op: "sign in", Class: ClassMisconfigured, Err: errors.New("static client has no id")}
		}
		g.ClientID, g.ClientSecret, g.RedirectPort = sc.ID, sc.Secret, sc.RedirectPort
		g.PrivateKey, g.KeyID, g.AuthMethod = sc.PrivateKey, sc.KeyID, staticMethod(sc, as)
		if g.AuthMethod == AuthPrivateKeyJWT {
			if _, err := parsePrivateKey(sc.PrivateKey); err != nil {
				return Grant{}, &Error{Op: "sign in", Class: ClassMisconfigured, Err: err}
			}
		}
		g.Registration = RegistrationStatic
	case prev != nil && prev.ClientID != "":
		g.ClientID, g.ClientSecret, g.AuthMethod, g.RedirectPort = prev.ClientID, prev.ClientSecret, prev.AuthMethod, prev.RedirectPort
		g.PrivateKey, g.KeyID, g.Registration = prev.PrivateKey, prev.KeyID, prev.Registration
	case p.Registration == RegistrationMetadataDocument && c.cimdURL != "":
		// The document lists loopback redirect URIs without a port, which RFC 8252 §7.3 and
		// draft-ietf-oauth-client-id-metadata-document §4 make valid on any port.
		g.ClientID, g.AuthMethod, g.Registration = c.cimdURL, AuthNone, RegistrationMetadataDocument
	case as.RegistrationEndpoint != "":
		g.Registration = RegistrationDynamic
	default:
		return Grant{}, &Error{Op: "register", Class: ClassMisconfigured, Err: ErrClientIDRequired}
	}
	return g, nil
}

// staticMethod is a user-supplied client's authentication method (see StaticClient.AuthMethod).
func staticMethod(sc *StaticClient, as *ASMetadata) AuthMethod {
	switch {
	case sc.AuthMethod != "":
		return sc.AuthMethod
	case sc.PrivateKey != "":
		return AuthPrivateKeyJWT
	case sc.Secret != "":
		return secretMethod(as)
	}
	return AuthNone
}

// clientFor is chooseClient, registering dynamically when that is the route, on a port picked as a
// later browser sign-in would bind it (device flow, tests).
func (c *Client) clientFor(ctx context.Context, p *Probe, opts SignInOptions) (Grant, error) {
	g, err := c.chooseClient(p, opts)
	if err == nil && g.Registration == RegistrationDynamic && g.ClientID == "" {
		g, err = c.reregister(ctx, g)
	}
	return g, err
}

// reregister registers a new client for g on a free loopback port (bound, then released): used where
// no sign-in listener exists (an evicted client found by Refresh or the device flow). The next browser
// sign-in binds that port again, or registers once more if it is taken.
func (c *Client) reregister(ctx context.Context, g Grant) (Grant, error) {
	return c.register(ctx, g, freePort())
}

// freePort returns a loopback port that was free a moment ago, or 0 if none could be bound.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// register registers a new client dynamically (RFC 7591) with the exact redirect URI
// http://127.0.0.1:port/callback (no port when port is 0) and returns g bound to it.
func (c *Client) register(ctx context.Context, g Grant, port int) (Grant, error) {
	if g.RegistrationEndpoint == "" {
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: ErrClientIDRequired}
	}
	grants := []string{"authorization_code", "refresh_token"}
	if g.DeviceAuthorizationEndpoint != "" {
		grants = append(grants, deviceGrantType)
	}
	redirect := "http://127.0.0.1" + redirectPath
	if port != 0 {
		redirect = "http://127.0.0.1:" + strconv.Itoa(port) + redirectPath
	}
	body, err := json.Marshal(map[string]any{
		"client_name":                c.name,
		"application_type":           "native",
		"redirect_uris":              []string{redirect},
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
	g.PrivateKey, g.KeyID = "", ""
	if g.AuthMethod == "" {
		// RFC 7591 §2: the default would be client_secret_basic, but we asked for none; an AS that
		// issued a secret anyway gets it the way its metadata prefers.
		g.AuthMethod = AuthNone
		if g.ClientSecret != "" {
			g.AuthMethod = AuthClientSecretBasic
		}
	}
	switch g.AuthMethod {
	case AuthNone, AuthClientSecretBasic, AuthClientSecretPost:
	default:
		return g, &Error{Op: "register", Class: ClassMisconfigured, Err: fmt.Errorf("unsupported token_endpoint_auth_method %q", g.AuthMethod)}
	}
	g.Registration, g.RedirectPort = RegistrationDynamic, port
	return g, nil
}
