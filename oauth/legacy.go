package oauth

import (
	"context"
	"io"
	"net/http"
	"slices"
)

// legacyAuthServer applies MCP 2025-03-26 (Authorization §2.3) to a server that publishes no
// protected-resource metadata: the authorization base URL is the MCP server's origin; its RFC 8414
// metadata is used when present (QuirkLegacyDiscovery), else the default endpoints /authorize, /token
// and /register at that origin (QuirkDefaultEndpoints) — but only once a cheap request shows that
// /authorize exists, so that a server wanting an API key is not mistaken for an OAuth one. It returns
// a nil AS when neither applies. That revision made PKCE mandatory for every client and server, so
// default endpoints count as PKCEAssumed.
func (c *Client) legacyAuthServer(ctx context.Context, serverURL string) (*ASMetadata, []Quirk, PKCESupport, error) {
	origin := originOf(serverURL)
	if origin == "" {
		return nil, nil, "", nil
	}
	as, quirks, err := c.findASMetadata(ctx, origin, true)
	if err != nil {
		return nil, nil, "", err
	}
	if as != nil {
		quirks = withQuirk(quirks, QuirkLegacyDiscovery)
		if !sameOrigin(as.Issuer, origin) {
			// An issuer on the server's own origin with a path (/oauth) is how that revision's servers
			// mount their AS; another origin is worth a warning.
			quirks = withQuirk(quirks, QuirkIssuerMismatch)
		} else {
			quirks = slices.DeleteFunc(quirks, func(q Quirk) bool { return q == QuirkIssuerMismatch })
		}
		return as, quirks, c.pkceSupport(as), nil
	}
	if !c.endpointExists(ctx, origin+"/authorize") {
		return nil, nil, "", nil
	}
	as = &ASMetadata{
		Issuer:                origin,
		AuthorizationEndpoint: origin + "/authorize",
		TokenEndpoint:         origin + "/token",
		RegistrationEndpoint:  origin + "/register",
	}
	return as, []Quirk{QuirkLegacyDiscovery, QuirkDefaultEndpoints, QuirkPKCEAssumed}, PKCEAssumed, nil
}

// endpointExists sends a parameterless GET to an authorization endpoint and reads whether one answers
// there. An AS answers such a request with an error (400, or even a 500 from a server that does not
// validate) or a redirect to its own error or login page; a path that does not exist answers 404, 405
// or 410, one behind an API-key wall 401 or 403, a web app's catch-all route 200, and a gateway in
// trouble 502–504 — none of those is taken for an AS. Redirects are not followed.
func (c *Client) endpointExists(ctx context.Context, endpoint string) bool {
	if checkURL(endpoint) != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeStepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return false
	}
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299, s == http.StatusUnauthorized, s == http.StatusForbidden, s == http.StatusNotFound,
		s == http.StatusMethodNotAllowed, s == http.StatusGone, s >= 502 && s <= 504:
		return false
	}
	return true
}
