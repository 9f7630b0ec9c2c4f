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
	// ErrIssuerMismatch: an authorization response's `iss` is missing or wrong (RFC 9207), a token
	// names another tenant than its templated issuer allows, or AS metadata came from another origin
	// than asked or names a template that does not fit. (A plain issuer mismatch in the metadata is
	// tolerated: QuirkIssuerMismatch.)
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
			return nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("%s: %w", RedactURL(u), err))
		}
		// resourceCovers compares scheme, host and path only: a query on serverURL (an API key some
		// servers take there) neither matches nor mismatches. The error names the URLs without their
		// queries, which may hold that key (the challenge's resource_metadata URL may echo it).
		if !resourceCovers(prm.Resource, serverURL) {
			return nil, discoverErr(ClassMisconfigured, 0,
				fmt.Errorf("%w: %s names %q, not %q", ErrResourceMismatch, RedactURL(u), RedactURL(prm.Resource), RedactURL(serverURL)))
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

// authServerMetadata fetches and validates the metadata of the authorization server the resource
// names. RFC 8414 §3.3 wants the document's issuer to equal that URL; real providers break it in two
// forms, both accepted and reported as a quirk:
//   - a templated issuer (Entra /common, /organizations: https://host/{tenantid}/v2.0) whose shape fits
//     the URL asked (QuirkIssuerTemplate); each sign-in then resolves and checks a concrete tenant;
//   - another issuer altogether (Atlassian, Slack: QuirkIssuerMismatch).
//
// Mix-up protection stays: the grant is bound to the document's issuer, RFC 9207 `iss` is checked
// against it, a document is used only if it came from the origin it was asked of (a redirect to
// another origin is refused), and another issuer is accepted only when it and both endpoints belong
// to the same operator as the URL asked (checkSameOperator): a resource cannot name an honest issuer
// with its own token endpoint.
func (c *Client) authServerMetadata(ctx context.Context, issuer string) (*ASMetadata, []Quirk, error) {
	as, quirks, err := c.findASMetadata(ctx, issuer, false)
	if err == nil && as == nil {
		err = discoverErr(ClassMisconfigured, 0, fmt.Errorf("no authorization server metadata found for %s", issuer))
	}
	return as, quirks, err
}

// findASMetadata is authServerMetadata, returning nil, nil, nil when no document exists. guessing
// (the 2025-03-26 fallback, where the URL is a guess) treats a document that does not decode, or a
// server error, as no document: a web app answering every path with its HTML page is not an AS.
func (c *Client) findASMetadata(ctx context.Context, issuer string, guessing bool) (*ASMetadata, []Quirk, error) {
	if err := checkURL(issuer); err != nil {
		return nil, nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("authorization server %q: %w", issuer, err))
	}
	urls, err := asMetadataURLs(issuer)
	if err != nil {
		return nil, nil, discoverErr(ClassMisconfigured, 0, err)
	}
	for _, u := range urls {
		body, final, err := c.fetchDocument(ctx, u)
		if err != nil {
			if e := fetchErr("authorization server metadata", u, err); e != nil && !guessing {
				return nil, nil, e
			}
			continue
		}
		if !sameOrigin(final, u) {
			if guessing {
				continue // a site redirecting every path elsewhere (to www.) is no AS of its own
			}
			return nil, nil, discoverErr(ClassMisconfigured, 0,
				fmt.Errorf("%w: the metadata asked of %s was served by another origin, %s", ErrIssuerMismatch, RedactURL(u), originOf(final)))
		}
		as, err := DecodeASMetadata(body)
		if err != nil {
			if guessing {
				continue
			}
			return nil, nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("%s: %w", u, err))
		}
		var quirks []Quirk
		switch {
		case sameIssuer(as.Issuer, issuer):
		case isTemplate(as.Issuer) && sameHost(as.Issuer, issuer):
			if _, ok := matchTemplate(as.Issuer, issuer); !ok {
				return nil, nil, discoverErr(ClassMisconfigured, 0,
					fmt.Errorf("%w: %s names the issuer template %q, which %q does not fit", ErrIssuerMismatch, u, as.Issuer, issuer))
			}
			quirks = append(quirks, QuirkIssuerTemplate)
		case isTemplate(as.Issuer):
			return nil, nil, discoverErr(ClassMisconfigured, 0,
				fmt.Errorf("%w: %s names the issuer template %q of another host", ErrIssuerMismatch, u, as.Issuer))
		default:
			if err := checkSameOperator(issuer, as); err != nil {
				return nil, nil, discoverErr(ClassMisconfigured, 0, fmt.Errorf("%s: %w", u, err))
			}
			quirks = append(quirks, QuirkIssuerMismatch)
		}
		return as, quirks, nil
	}
	return nil, nil, nil
}

// sameOrigin reports whether two URLs share scheme, host and port.
func sameOrigin(a, b string) bool { return originOf(a) == originOf(b) && originOf(a) != "" }

// originOf returns scheme://host of a URL, lower-cased, or "" if it does not parse.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}
