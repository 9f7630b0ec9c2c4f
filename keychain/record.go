package keychain

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Record is everything authkeeper keeps about one server's grant: the token set, the binding it was
// issued under, and the store's bookkeeping. Every secret field is redacted by String, GoString,
// Format (all verbs: %v, %+v, %#v, %s, %d, …) and LogValue; only the stores serialise it in full.
type Record struct {
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"` // zero: unknown (no expires_in)
	Scopes       []string  `json:"scopes,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Binding      Binding   `json:"binding"`

	// Revision is set by Put: one more than the stored record's, starting at 1 (the keyring store skips
	// numbers its own failed Puts used). The value passed to Put is ignored; compare revisions to tell
	// whether a record changed since it was read.
	Revision uint64 `json:"revision"`
	// Written is set by Put to the time of the write (UTC).
	Written time.Time `json:"written,omitzero"`
	// RefreshStarted is set (and saved) before a refresh request is sent and cleared by the save of its
	// result: after a crash it says a refresh may have consumed the stored refresh token.
	RefreshStarted time.Time `json:"refresh_started,omitzero"`
	// Challenge holds the WWW-Authenticate values of the 401 with which a server added as needing no
	// auth asked for a token, which made it an OAuth server: a sign-in discovers its authorization
	// server from them when a probe does not meet that refusal again. Not secret. Default: none.
	Challenge []string `json:"challenge,omitempty"`
}

// Binding is what a grant is bound to: the tokens are valid only for this resource, from this issuer,
// for this client. Its secrets (ClientSecret, RegistrationAccessToken, PrivateKey, IdPClientSecret) are
// redacted like Record's.
type Binding struct {
	ServerURL     string `json:"server_url"`               // canonical MCP server URL
	Resource      string `json:"resource,omitempty"`       // RFC 8707 resource indicator
	Issuer        string `json:"issuer,omitempty"`         // RFC 8414 issuer identifier
	TokenEndpoint string `json:"token_endpoint,omitempty"` // where refreshes go
	// The AS's other endpoints, kept so that revocation and a new sign-in work without discovery.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	RevocationEndpoint    string `json:"revocation_endpoint,omitempty"`
	DeviceEndpoint        string `json:"device_authorization_endpoint,omitempty"`
	RegistrationEndpoint  string `json:"registration_endpoint,omitempty"`
	ClientID              string `json:"client_id,omitempty"`
	ClientSecret          string `json:"client_secret,omitempty"` // empty for public clients
	// AuthMethod is the client's token_endpoint_auth_method (none, client_secret_basic, …).
	AuthMethod string `json:"auth_method,omitempty"`
	// RedirectPort is the fixed loopback port a client registered by hand needs; 0 means any.
	RedirectPort int `json:"redirect_port,omitempty"`
	// OmitResource records that the AS rejects RFC 8707 `resource` (Entra AADSTS9010010).
	OmitResource bool `json:"omit_resource,omitempty"`
	// RequestedScopes are the scopes last asked for, reused when signing in again.
	RequestedScopes []string `json:"requested_scopes,omitempty"`
	// RegistrationMethod is how ClientID was obtained, e.g. "dynamic" (RFC 7591), "metadata-document",
	// or "static"; the keychain stores it without interpreting it.
	RegistrationMethod string `json:"registration_method,omitempty"`
	// RegistrationAccessToken and RegistrationClientURI manage a dynamic registration (RFC 7592 §2);
	// the URI is kept because the token is useless without it.
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
	// AdvertisedIssuer is the issuer the protected-resource metadata named when it differs from Issuer.
	AdvertisedIssuer string `json:"advertised_issuer,omitempty"`
	// TenantIssuer is the concrete issuer resolved from a templated Issuer (Entra {tenantid}).
	TenantIssuer string `json:"tenant_issuer,omitempty"`
	// ScopeOnRefresh records that the AS needs the scopes on every refresh.
	ScopeOnRefresh bool `json:"scope_on_refresh,omitempty"`
	// ExtraParams are sent on the authorization request and every token request (audience=…).
	ExtraParams map[string]string `json:"extra_params,omitempty"`
	// GrantType is "" (authorization code) or "client_credentials".
	GrantType string `json:"grant_type,omitempty"`
	// PrivateKey is the PEM key of a private_key_jwt client (a secret); KeyID its `kid`.
	PrivateKey string `json:"private_key,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	// IdPTokenEndpoint, IdPClientID and IdPClientSecret (a secret) are the enterprise IdP client a
	// cross-app access grant came through.
	IdPTokenEndpoint string `json:"idp_token_endpoint,omitempty"`
	IdPClientID      string `json:"idp_client_id,omitempty"`
	IdPClientSecret  string `json:"idp_client_secret,omitempty"`
	// Rotation is what refreshes showed of the AS's refresh tokens: "", "rotating" or "fixed".
	Rotation string `json:"rotation,omitempty"`
	// Quirks are the spec deviations tolerated for this grant (oauth.Quirk values).
	Quirks []string `json:"quirks,omitempty"`
}

// redacted describes a secret without revealing it.
func redacted(s string) string {
	if s == "" {
		return "none"
	}
	return "redacted"
}

// withoutQuery is a URL as String and LogValue show it: without its query and fragment, where an
// MCP server's URL may carry an API key (a record written before resources dropped the query).
func withoutQuery(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		return raw[:i]
	}
	return raw
}

// String describes r without any secret.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{access_token:%s refresh_token:%s expiry:%s scopes:%v token_type:%s binding:%s revision:%d written:%s refresh_started:%s challenge:%q}",
		redacted(r.AccessToken), redacted(r.RefreshToken), fmtTime(r.Expiry), r.Scopes, r.TokenType,
		r.Binding, r.Revision, fmtTime(r.Written), fmtTime(r.RefreshStarted), r.Challenge)
	return b.String()
}

// GoString is String with the type name, so %#v redacts too.
func (r Record) GoString() string { return "keychain.Record" + r.String() }

// Format makes every fmt verb print the redacted form; without it %d or %x would print the fields raw.
func (r Record) Format(f fmt.State, verb rune) { format(f, verb, r) }

// LogValue makes slog print the redacted form.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_token", redacted(r.AccessToken)),
		slog.String("refresh_token", redacted(r.RefreshToken)),
		slog.Time("expiry", r.Expiry),
		slog.Any("scopes", r.Scopes),
		slog.String("token_type", r.TokenType),
		slog.Any("binding", r.Binding),
		slog.Uint64("revision", r.Revision),
		slog.Time("written", r.Written),
		slog.Time("refresh_started", r.RefreshStarted),
		slog.Any("challenge", r.Challenge),
	)
}

// String describes b without its secrets.
func (b Binding) String() string {
	return fmt.Sprintf("{server_url:%s resource:%s issuer:%s token_endpoint:%s client_id:%s client_secret:%s registration_method:%s registration_access_token:%s registration_client_uri:%s grant_type:%s private_key:%s key_id:%s idp_client_id:%s idp_client_secret:%s rotation:%s quirks:%v}",
		withoutQuery(b.ServerURL), withoutQuery(b.Resource), b.Issuer, b.TokenEndpoint, b.ClientID, redacted(b.ClientSecret),
		b.RegistrationMethod, redacted(b.RegistrationAccessToken), b.RegistrationClientURI,
		b.GrantType, redacted(b.PrivateKey), b.KeyID, b.IdPClientID, redacted(b.IdPClientSecret), b.Rotation, b.Quirks)
}

// GoString is String with the type name, so %#v redacts too.
func (b Binding) GoString() string { return "keychain.Binding" + b.String() }

// Format makes every fmt verb print the redacted form.
func (b Binding) Format(f fmt.State, verb rune) { format(f, verb, b) }

// LogValue makes slog print the redacted form.
func (b Binding) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("server_url", withoutQuery(b.ServerURL)),
		slog.String("resource", withoutQuery(b.Resource)),
		slog.String("issuer", b.Issuer),
		slog.String("token_endpoint", b.TokenEndpoint),
		slog.String("client_id", b.ClientID),
		slog.String("client_secret", redacted(b.ClientSecret)),
		slog.String("registration_method", b.RegistrationMethod),
		slog.String("registration_access_token", redacted(b.RegistrationAccessToken)),
		slog.String("registration_client_uri", b.RegistrationClientURI),
		slog.String("grant_type", b.GrantType),
		slog.String("private_key", redacted(b.PrivateKey)),
		slog.String("key_id", b.KeyID),
		slog.String("idp_client_id", b.IdPClientID),
		slog.String("idp_client_secret", redacted(b.IdPClientSecret)),
		slog.String("rotation", b.Rotation),
		slog.Any("quirks", b.Quirks),
	)
}

func format(f fmt.State, verb rune, v interface {
	fmt.Stringer
	fmt.GoStringer
}) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, v.GoString())
		return
	}
	_, _ = io.WriteString(f, v.String())
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}
