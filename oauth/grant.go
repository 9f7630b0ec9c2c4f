package oauth

import "fmt"

// AuthMethod is how the client authenticates at the token endpoint (RFC 7591 §2,
// token_endpoint_auth_method).
type AuthMethod string

const (
	// AuthNone is a public client: client_id in the body, no secret.
	AuthNone AuthMethod = "none"
	// AuthClientSecretBasic sends the id and secret in HTTP Basic (RFC 6749 §2.3.1).
	AuthClientSecretBasic AuthMethod = "client_secret_basic"
	// AuthClientSecretPost sends the id and secret in the body.
	AuthClientSecretPost AuthMethod = "client_secret_post"
	// AuthPrivateKeyJWT sends an RFC 7523 §2.2 client assertion signed with the client's private key
	// (OpenID Connect Core §9).
	AuthPrivateKeyJWT AuthMethod = "private_key_jwt"
)

// GrantType is the OAuth grant a Grant's tokens come from, which decides how Refresh renews them.
type GrantType string

const (
	// GrantAuthorizationCode: a user signed in (browser or device flow); renewed with the refresh
	// token. The empty GrantType means this too.
	GrantAuthorizationCode GrantType = "authorization_code"
	// GrantClientCredentials: a machine identity (RFC 6749 §4.4); renewed by asking again with the
	// client's credentials, no refresh token.
	GrantClientCredentials GrantType = "client_credentials"
)

// Rotation is what Refresh learned about the AS's refresh tokens (RFC 6749 §6, OAuth 2.1 §4.3.1).
type Rotation string

const (
	// RotationUnknown: no refresh yet.
	RotationUnknown Rotation = ""
	// RotationRotating: the AS returned a new refresh token; the old one is spent.
	RotationRotating Rotation = "rotating"
	// RotationFixed: the AS returned none, or the same one; it stays valid.
	RotationFixed Rotation = "fixed"
)

// RegistrationMethod records where the client id came from, which decides whether an evicted client can
// be registered again without the user.
type RegistrationMethod string

const (
	// RegistrationStatic: the user supplied the client id (and maybe a secret and a fixed port).
	RegistrationStatic RegistrationMethod = "static"
	// RegistrationMetadataDocument: the client id is the URL of a Client ID Metadata Document.
	RegistrationMetadataDocument RegistrationMethod = "client_id_metadata_document"
	// RegistrationDynamic: RFC 7591 dynamic client registration.
	RegistrationDynamic RegistrationMethod = "dynamic"
)

// Grant binds a server to the authorization server and client that hold its tokens: everything Refresh
// and Revoke need without discovering again. The engine persists it next to the tokens (the client
// secret is a secret: store the Grant in the keychain). String redacts the secret.
type Grant struct {
	// Resource is the RFC 8707 resource indicator: the MCP server's canonical URI, without the query
	// its URL may carry (see Probe.Resource). A grant stored by an earlier version may still have one:
	// String and errors never show it.
	Resource string `json:"resource"`
	// Issuer is the authorization server the registration and tokens are bound to.
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint, TokenEndpoint, RevocationEndpoint, DeviceAuthorizationEndpoint and
	// RegistrationEndpoint are copied from the AS metadata; the optional ones may be empty.
	AuthorizationEndpoint       string `json:"authorization_endpoint,omitempty"`
	TokenEndpoint               string `json:"token_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint,omitempty"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
	RegistrationEndpoint        string `json:"registration_endpoint,omitempty"`
	// ClientID and ClientSecret identify the client; ClientSecret is empty for a public client.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// AuthMethod is the registered token endpoint authentication method.
	AuthMethod AuthMethod `json:"auth_method"`
	// Registration is where ClientID came from.
	Registration RegistrationMethod `json:"registration"`
	// RedirectPort is the fixed loopback port a pre-registered client needs; 0 means any port.
	RedirectPort int `json:"redirect_port,omitempty"`
	// OmitResource is set once the AS rejected `resource` (Entra AADSTS9010010); token requests for this
	// grant then leave it out.
	OmitResource bool `json:"omit_resource,omitempty"`
	// Scopes are the scopes last requested, reused when signing in again.
	Scopes []string `json:"scopes,omitempty"`
	// AdvertisedIssuer is the authorization server the protected-resource metadata named when it
	// differs from Issuer (QuirkIssuerMismatch); informational, nothing is sent to it.
	AdvertisedIssuer string `json:"advertised_issuer,omitempty"`
	// TenantIssuer is the concrete issuer of the latest sign-in under a templated Issuer (Entra's
	// {tenantid}), for status to show. Within one sign-in the callback's `iss`, the ID token's and the
	// access token's must agree on it (a disagreement is a mix-up: ErrIssuerMismatch). It binds no
	// later sign-in: one that names another tenant — the user chose an account of another
	// organisation, which a multi-tenant app allows — replaces it, and refreshes do not check it;
	// whether that tenant's tokens are good is the resource's call.
	TenantIssuer string `json:"tenant_issuer,omitempty"`
	// ScopeOnRefresh makes every refresh send Scopes (Entra v2 requires it).
	ScopeOnRefresh bool `json:"scope_on_refresh,omitempty"`
	// ExtraParams are sent on the authorization request and on every token request (e.g. Auth0's
	// audience). They never override a parameter the protocol sets.
	ExtraParams map[string]string `json:"extra_params,omitempty"`
	// GrantType is how tokens are obtained; "" means GrantAuthorizationCode.
	GrantType GrantType `json:"grant_type,omitempty"`
	// PrivateKey is the PEM private key of an AuthPrivateKeyJWT client: a secret, redacted like
	// ClientSecret. KeyID, when set, goes in the assertion's `kid` header.
	PrivateKey string `json:"private_key,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	// IdPTokenEndpoint, IdPClientID and IdPClientSecret name, for a GrantJWTBearer grant, the
	// enterprise IdP client its identity assertion came through (see CrossAppAccess), so that signing
	// in again needs only a new ID token. IdPClientSecret is a secret, redacted like ClientSecret.
	IdPTokenEndpoint string `json:"idp_token_endpoint,omitempty"`
	IdPClientID      string `json:"idp_client_id,omitempty"`
	IdPClientSecret  string `json:"idp_client_secret,omitempty"`
	// Rotation is what refreshes have shown of the AS's refresh-token policy.
	Rotation Rotation `json:"rotation,omitempty"`
	// Quirks are the spec deviations tolerated for this grant, for status to show.
	Quirks []Quirk `json:"quirks,omitempty"`
}

// String describes the grant without the client secrets or private key, and names the resource
// without a query (a grant stored before resources dropped theirs may still carry an API key there).
func (g Grant) String() string {
	return fmt.Sprintf("Grant{resource=%s issuer=%s client=%s secret=%s key=%s auth=%s registration=%s grant_type=%s idp_client=%s idp_secret=%s omit_resource=%t quirks=%q}",
		RedactURL(g.Resource), g.Issuer, g.ClientID, redact(g.ClientSecret), redact(g.PrivateKey), g.AuthMethod, g.Registration,
		g.GrantType, g.IdPClientID, redact(g.IdPClientSecret), g.OmitResource, g.Quirks)
}

// GoString makes %#v as safe as %v.
func (g Grant) GoString() string { return g.String() }
