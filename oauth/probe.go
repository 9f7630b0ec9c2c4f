package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Requirement is what a server needs before it will answer.
type Requirement int

const (
	// NoAuth: the server answered an unauthenticated MCP request.
	NoAuth Requirement = iota
	// OAuthSignIn: the server points at an authorization server this package can sign in to.
	OAuthSignIn
	// StaticToken: the server refused without saying how to sign in; the user must supply a token or
	// API key.
	StaticToken
)

func (r Requirement) String() string {
	switch r {
	case OAuthSignIn:
		return "OAuth sign-in available"
	case StaticToken:
		return "static token or API key needed"
	default:
		return "no auth needed"
	}
}

// Probe is what Client.Probe learned about a server. SignIn and StartDevice take it.
type Probe struct {
	// ServerURL is the URL probed.
	ServerURL string
	// Requirement is the verdict, and Reason says why in words for the user.
	Requirement Requirement
	Reason      string
	// The fields below are set only for OAuthSignIn.

	// Resource is the canonical resource URI to send as RFC 8707 `resource`: the one the
	// protected-resource metadata names, else ServerURL without its query and fragment (ResourceOf).
	Resource string
	// Challenge is the Bearer challenge of the 401.
	Challenge Challenge
	// ResourceMetadata and AuthServer are the validated documents.
	ResourceMetadata *ResourceMetadata
	AuthServer       *ASMetadata
	// Scopes are the scopes to request: the challenge's, else the resource's scopes_supported, plus
	// offline_access when the AS advertises it.
	Scopes []string
	// Registration is the route to a client id that needs nothing from the user, or "" when only a
	// user-supplied client id will do.
	Registration RegistrationMethod
	// PKCE says whether the AS advertises S256 (SignIn refuses PKCEMissing without
	// SignInOptions.AssumePKCE).
	PKCE PKCESupport
	// AdvertisedIssuer is the authorization server the protected-resource metadata named when the AS
	// metadata found there names another issuer (QuirkIssuerMismatch).
	AdvertisedIssuer string
	// Quirks are the deviations discovery tolerated; SignIn copies them into the grant.
	Quirks []Quirk
}

// PKCESupport is what is known of an AS's support for PKCE S256 (RFC 7636).
type PKCESupport string

const (
	// PKCEAdvertised: code_challenge_methods_supported lists S256.
	PKCEAdvertised PKCESupport = "advertised"
	// PKCEAssumed: not advertised, but the issuer's host is in Config.PKCEAssumedIssuers, or the AS
	// is a 2025-03-26 server's default endpoints (that revision made PKCE mandatory on both sides).
	PKCEAssumed PKCESupport = "assumed"
	// PKCEMissing: not advertised by an unknown issuer.
	PKCEMissing PKCESupport = "missing"
)

// initialize is a minimal MCP initialize request: the unauthenticated request that draws the 401.
const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",` +
	`"capabilities":{},"clientInfo":{"name":"authkeeper-probe","version":"0"}}}`

// Probe sends an unauthenticated MCP request to serverURL and follows the 401's pointers to the
// authorization server. A server that answers initialize is asked, within the session, for what a
// client does next (see probeSession) before it is called NoAuth. A server without protected-resource
// metadata is tried as the 2025-03-26 revision says (see legacyAuthServer). Discovery failures are
// *Error with Op "discover": transient when a server could not be reached or answered 5xx,
// misconfigured when a document is malformed or mismatched. An AS that does not advertise PKCE S256 is
// no failure here: Probe.PKCE says so and SignIn decides.
func (c *Client) Probe(ctx context.Context, serverURL string) (*Probe, error) {
	if err := checkURL(serverURL); err != nil {
		return nil, discoverErr(ClassMisconfigured, 0, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL, strings.NewReader(initialize))
	if err != nil {
		return nil, discoverErr(ClassMisconfigured, 0, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, discoverErr(ClassTransient, 0, redactURLError(err))
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	p := &Probe{ServerURL: serverURL}
	status, header := resp.StatusCode, resp.Header
	switch {
	case status >= 200 && status <= 299:
		s := session{id: resp.Header.Get("Mcp-Session-Id"), version: protocolVersion(resp.Header.Get("Content-Type"), body)}
		refusal, ok := c.probeSession(ctx, serverURL, s)
		c.closeSession(ctx, serverURL, s.id)
		if !ok {
			p.Reason = "the server answered without credentials"
			return p, nil
		}
		status, header = refusal.status, refusal.header
		p.Reason = "the server answered initialize without credentials but asks for a token for " + refusal.method + "; "
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
	case status >= 500:
		return nil, discoverErr(ClassTransient, status, fmt.Errorf("MCP server answered HTTP %d", status))
	default:
		return nil, discoverErr(ClassMisconfigured, status,
			fmt.Errorf("MCP server answered HTTP %d to initialize; is the URL an MCP endpoint?", status))
	}
	if err := c.discover(ctx, p, status, header); err != nil {
		return nil, err
	}
	return p, nil
}

// discover fills p from a refusal (status, header): protected-resource metadata and its authorization
// server, else the 2025-03-26 fallbacks, else a StaticToken verdict.
func (c *Client) discover(ctx context.Context, p *Probe, status int, header http.Header) error {
	ch, bearer := BearerChallenge(header)
	p.Challenge = ch
	p.Requirement = StaticToken
	prm, err := c.resourceMetadata(ctx, p.ServerURL, ch.Params["resource_metadata"])
	if err != nil {
		return err
	}
	if prm == nil {
		// MCP 2025-03-26 had no protected-resource metadata; its servers answer 401 with a bare Bearer
		// challenge or none. Another scheme (ApiKey, Basic) says the server wants something else.
		if status == http.StatusUnauthorized && (bearer || len(header.Values("WWW-Authenticate")) == 0) {
			as, quirks, pkce, err := c.legacyAuthServer(ctx, p.ServerURL)
			if err != nil {
				return err
			}
			if as != nil {
				c.accept(p, ResourceOf(p.ServerURL), originOf(p.ServerURL), as, quirks, pkce, nil)
				return nil
			}
		}
		if bearer {
			p.Reason += fmt.Sprintf("the server answered HTTP %d with a Bearer challenge but publishes no protected-resource or authorization server metadata", status)
		} else {
			p.Reason += fmt.Sprintf("the server answered HTTP %d without a Bearer challenge or protected-resource metadata", status)
		}
		return nil
	}
	if len(prm.AuthorizationServers) == 0 {
		p.Reason += "the server's protected-resource metadata names no authorization server"
		return nil
	}
	advertised := prm.AuthorizationServers[0]
	as, quirks, err := c.authServerMetadata(ctx, advertised)
	if err != nil {
		return err
	}
	p.ResourceMetadata = prm
	c.accept(p, prm.Resource, advertised, as, quirks, c.pkceSupport(as), prm.ScopesSupported)
	return nil
}

// accept makes p an OAuthSignIn verdict for as, reached through advertised.
func (c *Client) accept(p *Probe, resource, advertised string, as *ASMetadata, quirks []Quirk, pkce PKCESupport, resourceScopes []string) {
	p.Requirement, p.Resource, p.AuthServer, p.PKCE = OAuthSignIn, resource, as, pkce
	p.Quirks = quirks
	if slices.Contains(quirks, QuirkIssuerMismatch) {
		p.AdvertisedIssuer = advertised
	}
	if pkce == PKCEAssumed {
		p.Quirks = withQuirk(p.Quirks, QuirkPKCEAssumed)
	}
	if c.knownHost(as.Issuer) {
		// Entra v2 refuses a refresh without scope (AADSTS90014): send it from the first refresh on.
		p.Quirks = withQuirk(p.Quirks, QuirkScopeOnRefresh)
	}
	p.Scopes = chooseScopes(p.Challenge.Scopes(), resourceScopes, as.ScopesSupported)
	switch {
	case as.ClientIDMetadataDocumentSupported && c.cimdURL != "":
		p.Registration = RegistrationMetadataDocument
	case as.RegistrationEndpoint != "":
		p.Registration = RegistrationDynamic
	}
	p.Reason += "the server uses OAuth at " + as.Issuer
	if p.Registration == "" {
		p.Reason += ", which offers no automatic client registration: a client id is needed"
	}
	if pkce == PKCEMissing {
		p.Reason += "; it does not advertise PKCE S256, so signing in needs an explicit choice (--assume-pkce)"
	}
}

// ResourceOf is the RFC 8707 resource indicator of a server reached at serverURL that publishes no
// protected-resource metadata: serverURL without its query and fragment. RFC 8707 §2 says a resource
// SHOULD NOT include a query and MUST NOT include a fragment, and MCP's canonical server URI has
// neither; a query is also where some servers take an API key, which must not travel to the AS as an
// identifier, nor be shown wherever the resource is (Grant.String, errors, status). ServerURL keeps
// the query: it is what reaches the server. serverURL has passed checkURL.
func ResourceOf(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return ""
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}

// SameResource reports whether two resource indicators name the same resource, their queries aside:
// a grant stored before resources dropped the server URL's query (ResourceOf) still names the one its
// successor names without it.
func SameResource(a, b string) bool { return a == b || ResourceOf(a) == ResourceOf(b) }

// pkceSupport decides Probe.PKCE from the metadata and Config.PKCEAssumedIssuers.
func (c *Client) pkceSupport(as *ASMetadata) PKCESupport {
	switch {
	case as.AdvertisesS256():
		return PKCEAdvertised
	case c.knownHost(as.Issuer):
		return PKCEAssumed
	}
	return PKCEMissing
}

// knownHost reports whether issuer's host is one of Config.PKCEAssumedIssuers (Entra ID's clouds).
func (c *Client) knownHost(issuer string) bool {
	u, err := url.Parse(issuer)
	return err == nil && slices.Contains(c.pkceOK, strings.ToLower(u.Hostname()))
}

func discoverErr(class Class, status int, err error) *Error {
	return &Error{Op: "discover", Class: class, Status: status, Err: err}
}

// fetchErr turns a failed metadata GET into a discovery error, or nil when the URL simply has no
// document (4xx) and the next candidate should be tried.
func fetchErr(what, u string, err error) *Error {
	var se *statusError
	switch {
	case errors.As(err, &se) && se.status >= 400 && se.status < 500:
		return nil
	case errors.As(err, &se):
		return discoverErr(Classify("", se.status), se.status, fmt.Errorf("%s %s: %w", what, RedactURL(u), err))
	case errors.Is(err, ErrInsecureURL), errors.Is(err, errTooLarge):
		// A refused redirect arrives as a *url.Error naming the redirect target in full: redact it.
		return discoverErr(ClassMisconfigured, 0, fmt.Errorf("%s %s: %w", what, RedactURL(u), redactURLError(err)))
	}
	return discoverErr(ClassTransient, 0, fmt.Errorf("%s: %w", what, redactURLError(err)))
}
