package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// ErrInsecureURL reports an http:// URL on a non-loopback host, or a scheme other than http(s).
var ErrInsecureURL = errors.New("oauth: URL must be https (plain http only on loopback)")

// ResourceMetadata is RFC 9728 protected-resource metadata, the fields a client uses.
type ResourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
	ResourceName         string   `json:"resource_name,omitempty"`
}

// ASMetadata is RFC 8414 / OpenID Connect Discovery authorization-server metadata, the fields a client
// uses.
type ASMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                         string   `json:"revocation_endpoint,omitempty"`
	DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                     []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported                        []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported,omitempty"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// DecodePRM decodes and validates protected-resource metadata: `resource` present, every authorization
// server an https (or loopback http) URL.
func DecodePRM(data []byte) (*ResourceMetadata, error) {
	var m ResourceMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode resource metadata: %w", err)
	}
	if m.Resource == "" {
		return nil, errors.New("resource metadata has no resource")
	}
	if err := checkURL(m.Resource); err != nil {
		return nil, fmt.Errorf("resource metadata resource: %w", err)
	}
	for i, as := range m.AuthorizationServers {
		if err := checkURL(as); err != nil {
			return nil, fmt.Errorf("resource metadata authorization_servers[%d]: %w", i, err)
		}
	}
	return &m, nil
}

// DecodeASMetadata decodes and validates authorization-server metadata: issuer, authorization and token
// endpoints present, every endpoint https (or loopback http). It does not compare the issuer, and does
// not require PKCE S256 to be advertised: discovery does both, and records what it tolerated
// (Probe.PKCE, Probe.Quirks).
func DecodeASMetadata(data []byte) (*ASMetadata, error) {
	var m ASMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode authorization server metadata: %w", err)
	}
	if m.Issuer == "" || m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" {
		return nil, errors.New("authorization server metadata lacks issuer, authorization_endpoint or token_endpoint")
	}
	for name, u := range map[string]string{
		"issuer":                        m.Issuer,
		"authorization_endpoint":        m.AuthorizationEndpoint,
		"token_endpoint":                m.TokenEndpoint,
		"registration_endpoint":         m.RegistrationEndpoint,
		"revocation_endpoint":           m.RevocationEndpoint,
		"device_authorization_endpoint": m.DeviceAuthorizationEndpoint,
	} {
		if u == "" {
			continue
		}
		if err := checkURL(u); err != nil {
			return nil, fmt.Errorf("authorization server metadata %s: %w", name, err)
		}
	}
	return &m, nil
}

// AdvertisesS256 reports whether the metadata lists PKCE S256 in code_challenge_methods_supported.
func (m *ASMetadata) AdvertisesS256() bool {
	return slices.Contains(m.CodeChallengeMethodsSupported, "S256")
}

// ErrNoPKCE reports an authorization server that does not advertise PKCE S256 and is not known to
// support it: SignIn refuses it unless SignInOptions.AssumePKCE.
var ErrNoPKCE = errors.New("oauth: authorization server does not advertise PKCE S256")

// CheckURL reports whether raw may carry a credential: an https URL, or plain http only to a loopback
// host ("localhost", 127.0.0.0/8, ::1), with a host and without user info. It is the rule every URL
// this package sends something to obeys; the engine applies it to the MCP servers it sends tokens to.
// Its errors wrap ErrInsecureURL and name the URL by scheme, host and path only.
func CheckURL(raw string) error { return checkURL(raw) }

// checkURL accepts https URLs, and http URLs whose host is a loopback address or "localhost". Its errors
// name the URL by scheme, host and path only: the rest (user:password@, a query holding a key) may be
// secret, and these errors reach events, the audit log and control replies.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// Not err: *url.Error quotes the whole URL, and its cause may quote a part (an invalid port).
		return fmt.Errorf("%w: not a valid URL", ErrInsecureURL)
	}
	shown := u.Scheme + "://" + u.Host + u.Path
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: %q has no host or carries credentials", ErrInsecureURL, shown)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrInsecureURL, shown)
}

// IsLoopbackHost reports whether host (a URL's Hostname: no port, no brackets) is localhost or a
// loopback address: the only hosts where this package accepts plain http. Callers that add a
// scheme or judge a proxy URL use it so that they agree with that rule.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameIssuer compares issuers exactly, ignoring one trailing slash (RFC 8414 §3.3 asks for identity;
// the slash tolerance avoids a common false mismatch).
func sameIssuer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// resourceCovers reports whether the resource advertised in metadata covers the server URL: same
// origin, and the server's path equal to or beneath the resource's path (RFC 9728 §3.3, as the
// TypeScript SDK applies it to path-mounted MCP servers).
func resourceCovers(resource, server string) bool {
	r, err1 := url.Parse(resource)
	s, err2 := url.Parse(server)
	if err1 != nil || err2 != nil {
		return false
	}
	if !strings.EqualFold(r.Scheme, s.Scheme) || !strings.EqualFold(r.Host, s.Host) {
		return false
	}
	rp := strings.TrimSuffix(r.Path, "/")
	sp := strings.TrimSuffix(s.Path, "/")
	return sp == rp || strings.HasPrefix(sp, rp+"/")
}
