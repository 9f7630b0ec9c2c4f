package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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

	// Resource is the canonical resource URI to send as RFC 8707 `resource`.
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
}

// initialize is a minimal MCP initialize request: the unauthenticated request that draws the 401.
const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",` +
	`"capabilities":{},"clientInfo":{"name":"authkeeper-probe","version":"0"}}}`

// Probe sends an unauthenticated MCP request to serverURL and follows the 401's pointers to the
// authorization server. Discovery failures are *Error with Op "discover": transient when a server
// could not be reached or answered 5xx, misconfigured when a document is malformed or mismatched.
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
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	p := &Probe{ServerURL: serverURL}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		c.closeSession(ctx, serverURL, resp.Header.Get("Mcp-Session-Id"))
		p.Reason = "the server answered without credentials"
		return p, nil
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
	case resp.StatusCode >= 500:
		return nil, discoverErr(ClassTransient, resp.StatusCode, fmt.Errorf("MCP server answered HTTP %d", resp.StatusCode))
	default:
		return nil, discoverErr(ClassMisconfigured, resp.StatusCode,
			fmt.Errorf("MCP server answered HTTP %d to initialize; is the URL an MCP endpoint?", resp.StatusCode))
	}
	ch, ok := BearerChallenge(resp.Header)
	p.Challenge = ch
	p.Requirement = StaticToken
	prm, err := c.resourceMetadata(ctx, serverURL, ch.Params["resource_metadata"])
	if err != nil {
		return nil, err
	}
	if prm == nil {
		if ok {
			p.Reason = fmt.Sprintf("the server answered HTTP %d with a Bearer challenge but publishes no protected-resource metadata", resp.StatusCode)
		} else {
			p.Reason = fmt.Sprintf("the server answered HTTP %d without a Bearer challenge or protected-resource metadata", resp.StatusCode)
		}
		return p, nil
	}
	if len(prm.AuthorizationServers) == 0 {
		p.Reason = "the server's protected-resource metadata names no authorization server"
		return p, nil
	}
	as, err := c.authServerMetadata(ctx, prm.AuthorizationServers[0])
	if err != nil {
		return nil, err
	}
	p.Requirement, p.Resource, p.ResourceMetadata, p.AuthServer = OAuthSignIn, prm.Resource, prm, as
	p.Scopes = chooseScopes(ch.Scopes(), prm.ScopesSupported, as.ScopesSupported)
	switch {
	case as.ClientIDMetadataDocumentSupported && c.cimdURL != "":
		p.Registration = RegistrationMetadataDocument
	case as.RegistrationEndpoint != "":
		p.Registration = RegistrationDynamic
	}
	p.Reason = "the server uses OAuth at " + as.Issuer
	if p.Registration == "" {
		p.Reason += ", which offers no automatic client registration: a client id is needed"
	}
	return p, nil
}

// chooseScopes applies the spec's order: the challenge's scope, else the resource's scopes_supported;
// then offline_access when the AS advertises it, so that a refresh token is issued.
func chooseScopes(challenge, resource, as []string) []string {
	s := slices.Clone(challenge)
	if len(s) == 0 {
		s = slices.Clone(resource)
	}
	if slices.Contains(as, "offline_access") && !slices.Contains(s, "offline_access") {
		s = append(s, "offline_access")
	}
	return s
}

// closeSession ends the session an unauthenticated initialize may have opened (MCP Streamable HTTP).
// Failures are ignored: the session is the server's to expire.
func (c *Client) closeSession(ctx context.Context, serverURL, id string) {
	if id == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, serverURL, nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", id)
	if resp, err := c.http.Do(req); err == nil {
		resp.Body.Close()
	}
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
		return discoverErr(Classify("", se.status), se.status, fmt.Errorf("%s %s: %w", what, u, err))
	case errors.Is(err, ErrInsecureURL), errors.Is(err, errTooLarge):
		// A refused redirect arrives as a *url.Error naming the redirect target in full: redact it.
		return discoverErr(ClassMisconfigured, 0, fmt.Errorf("%s %s: %w", what, u, redactURLError(err)))
	}
	return discoverErr(ClassTransient, 0, fmt.Errorf("%s: %w", what, redactURLError(err)))
}
