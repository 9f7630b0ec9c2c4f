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
	// Resource is the RFC 8707 resource indicator: the MCP server's canonical URI.
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
}

// String describes the grant without the client secret.
func (g Grant) String() string {
	return fmt.Sprintf("Grant{resource=%s issuer=%s client=%s secret=%s auth=%s registration=%s omit_resource=%t}",
		g.Resource, g.Issuer, g.ClientID, redact(g.ClientSecret), g.AuthMethod, g.Registration, g.OmitResource)
}

// GoString makes %#v as safe as %v.
func (g Grant) GoString() string { return g.String() }
