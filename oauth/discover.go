package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Discovery mismatches, matched with errors.Is through the discovery *Error.
var (
	// ErrResourceMismatch: protected-resource metadata names a different resource (RFC 9728 §3.3).
	ErrResourceMismatch = errors.New("oauth: resource metadata is for a different resource")
	// ErrIssuerMismatch: AS metadata names a different issuer (RFC 8414 §3.3), or an authorization
	// response's `iss` is missing or wrong (RFC 9207).
	ErrIssuerMismatch = errors.New("oauth: issuer mismatch")
)

// resourceMetadata finds the server's protected-resource metadata: the challenge's URL, then the
// path-inserted well-known URL, then the root one (RFC 9728 §3.1). It returns nil, nil when none exists.
func (c *Client) resourceMetadata(ctx context.Context, serverURL, fromHeader string) (*ResourceMetadata, error) {
	su, err := url.Parse(serverURL)
	if err != nil {
		return nil, discoverErr(ClassMisconfigured, 0, err)
	}
	var candidates []string
	if fromHeader != "" {
		candidates = append(candidates, fromHeader)
	}
	origin := su.Scheme + "://" + su.Host
	if p := strings.TrimSuffix(su.EscapedPath(), "/"); p != "" {
		candidates = append(candidates, origin+"/.well-known/oauth-protected-resource"+p)
	}
	candidates = append(candidates, origin+"/.well-known/oauth-protected-resource")
	for _, u := range candidates {
		body, err := c.getDocument(ctx, u)
		if err != nil {
			if e := fetchErr("resource metadata", u, err); e != nil {
				return nil, e
			}
			continue
		}
		prm, err := DecodePRM(body)
		if err != nil {
			return nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("%s: %w", u, err))
		}
		if !resourceCovers(prm.Resource, serverURL) {
			return nil, discoverErr(ClassMisconfigured, 0,
				fmt.Errorf("%w: %s names %q, not %q", ErrResourceMismatch, u, prm.Resource, serverURL))
		}
		return prm, nil
	}
	return nil, nil
}

// asMetadataURLs lists the metadata URLs of an issuer in the order the MCP spec gives: RFC 8414 then
// OpenID discovery, path-inserted for an issuer with a path, plus the OpenID path-appended form.
func asMetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration",
	}, nil
}

// authServerMetadata fetches and validates the metadata of issuer: the document's issuer must equal it,
// and it must support PKCE S256.
func (c *Client) authServerMetadata(ctx context.Context, issuer string) (*ASMetadata, error) {
	if err := checkURL(issuer); err != nil {
		return nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("authorization server %q: %w", issuer, err))
	}
	urls, err := asMetadataURLs(issuer)
	if err != nil {
		return nil, discoverErr(ClassMisconfigured, 0, err)
	}
	for _, u := range urls {
		body, err := c.getDocument(ctx, u)
		if err != nil {
			if e := fetchErr("authorization server metadata", u, err); e != nil {
				return nil, e
			}
			continue
		}
		as, err := DecodeASMetadata(body)
		if err != nil {
			return nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("%s: %w", u, err))
		}
		if !sameIssuer(as.Issuer, issuer) {
			return nil, discoverErr(ClassMisconfigured, 0,
				fmt.Errorf("%w: %s names issuer %q, expected %q", ErrIssuerMismatch, u, as.Issuer, issuer))
		}
		return as, nil
	}
	return nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("no authorization server metadata found for %s", issuer))
}
