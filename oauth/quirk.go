package oauth

import "slices"

// Quirk names a deviation from the MCP authorization spec that authkeeper tolerated for one grant. It is
// recorded in Grant.Quirks so that status can show it as a warning; code branches on the constant, and
// people read Describe.
type Quirk string

const (
	// QuirkPKCEAssumed: the AS advertises no code_challenge_methods_supported; S256 was sent anyway
	// (a known issuer such as Entra ID, or the user's explicit choice).
	QuirkPKCEAssumed Quirk = "pkce-assumed"
	// QuirkIssuerMismatch: the protected-resource metadata names another issuer than the AS metadata's;
	// the grant is bound to the metadata's issuer (Atlassian, Slack).
	QuirkIssuerMismatch Quirk = "issuer-mismatch"
	// QuirkIssuerTemplate: the AS metadata names a templated issuer (Entra /common, /organizations:
	// https://login.microsoftonline.com/{tenantid}/v2.0); the concrete one is in Grant.TenantIssuer.
	QuirkIssuerTemplate Quirk = "issuer-template"
	// QuirkResourceOmitted: the AS rejects the RFC 8707 resource parameter (Entra AADSTS9010010).
	QuirkResourceOmitted Quirk = "resource-omitted"
	// QuirkScopeOnRefresh: the AS needs the scopes on every refresh (Entra v2).
	QuirkScopeOnRefresh Quirk = "scope-on-refresh"
	// QuirkNoExpiry: the token has no expiry and no refresh token (GitHub OAuth apps): it is used until
	// the server refuses it.
	QuirkNoExpiry Quirk = "no-expiry"
	// QuirkLegacyDiscovery: a 2025-03-26 server without protected-resource metadata; the AS metadata was
	// found at the MCP server's own origin.
	QuirkLegacyDiscovery Quirk = "legacy-discovery"
	// QuirkDefaultEndpoints: a 2025-03-26 server without AS metadata; the default /authorize, /token and
	// /register endpoints at its origin are used.
	QuirkDefaultEndpoints Quirk = "default-endpoints"
	// QuirkErrorsIn200: the AS answered an OAuth error with HTTP 200 (GitHub, Slack). Every exchange
	// that returns a grant records it, also with an error (sign-in, refresh, device flow, client
	// credentials, cross-app access); Revoke, and a StartDevice that fails, return no grant to
	// record it in.
	QuirkErrorsIn200 Quirk = "errors-in-200"
)

// Describe says in one sentence, for a person, what the quirk means.
func (q Quirk) Describe() string {
	switch q {
	case QuirkPKCEAssumed:
		return "The authorization server does not advertise PKCE; authkeeper sends it anyway."
	case QuirkIssuerMismatch:
		return "The server advertises a different authorization server than the one that answers; the grant is bound to the one that answers."
	case QuirkIssuerTemplate:
		return "The authorization server's issuer is a multi-tenant template; the sign-in's tenant was checked against it."
	case QuirkResourceOmitted:
		return "The authorization server rejects the resource parameter; authkeeper leaves it out."
	case QuirkScopeOnRefresh:
		return "The authorization server needs the scopes on every refresh; authkeeper sends them."
	case QuirkNoExpiry:
		return "The token has no expiry and no refresh token; it is used until the server refuses it."
	case QuirkLegacyDiscovery:
		return "The server predates protected-resource metadata (MCP 2025-03-26); its own origin's authorization server metadata was used."
	case QuirkDefaultEndpoints:
		return "The server publishes no authorization server metadata (MCP 2025-03-26); the default /authorize, /token and /register endpoints are used."
	case QuirkErrorsIn200:
		return "The authorization server returns errors with HTTP 200; authkeeper reads them as errors."
	}
	return "Unknown deviation " + string(q) + "."
}

// withQuirk returns qs with q added once, in first-seen order.
func withQuirk(qs []Quirk, q Quirk) []Quirk {
	if slices.Contains(qs, q) {
		return qs
	}
	return append(slices.Clone(qs), q)
}

// HasQuirk reports whether the grant recorded q.
func (g Grant) HasQuirk(q Quirk) bool { return slices.Contains(g.Quirks, q) }
