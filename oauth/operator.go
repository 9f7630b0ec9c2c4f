package oauth

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// ErrForeignIssuer: authorization server metadata names an issuer, or endpoints, of another operator
// than the server it was fetched from.
var ErrForeignIssuer = fmt.Errorf("%w: the metadata names an issuer of another operator", ErrIssuerMismatch)

// checkSameOperator decides whether AS metadata fetched from asked (the URL the protected resource
// advertised, or the MCP server's origin in the 2025-03-26 fallback) may name another issuer than
// asked, as Atlassian (mcp.atlassian.com → auth.atlassian.com) and Slack (mcp.slack.com → slack.com) do.
//
// RFC 8414 §3.3 requires the issuer to equal the URL the metadata was fetched for, because the issuer
// is what authenticates the AS to RFC 9207's mix-up defence: a malicious resource could otherwise serve
// metadata naming an honest issuer with its own token endpoint, have the user approve at the honest
// AS, and receive the code and PKCE verifier (the `iss` on the callback would match the claimed
// issuer). Accepting another issuer is therefore safe only when the same operator controls both
// names: the issuer and both endpoints must share the asked URL's registrable domain (eTLD+1 by the
// public suffix list), or, for loopback and IP hosts, which have none, its host and port. Anything else is
// refused with ErrForeignIssuer.
func checkSameOperator(asked string, as *ASMetadata) error {
	want, err := operatorOf(asked)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForeignIssuer, err)
	}
	for _, n := range []struct{ name, u string }{
		{"issuer", as.Issuer},
		{"authorization_endpoint", as.AuthorizationEndpoint},
		{"token_endpoint", as.TokenEndpoint},
	} {
		got, err := operatorOf(n.u)
		if err != nil || got != want {
			return fmt.Errorf("%w: %s %s is not under %s, which the metadata was fetched from", ErrForeignIssuer, n.name, RedactURL(n.u), want)
		}
	}
	return nil
}

// operatorOf is the registrable domain of a URL's host (e.g. atlassian.com for mcp.atlassian.com).
// An IP address, localhost or a single-label name has none, and many unrelated servers share one (every
// program on a machine listens on 127.0.0.1): there the operator is the host with its port.
func operatorOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("%q is not a URL with a host", RedactURL(raw))
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if net.ParseIP(host) != nil || host == "localhost" || !strings.Contains(host, ".") {
		return strings.ToLower(u.Host), nil
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host, nil // a name under no known suffix: only itself
	}
	return d, nil
}
