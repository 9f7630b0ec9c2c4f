package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// issued is a token endpoint's successful answer and what the grant learns from it.
type issued struct {
	tok Token
	// omittedResource: the AS rejected `resource` and the retry without it succeeded.
	omittedResource bool
	// refreshIssued: the answer carried a refresh_token (Refresh decides Rotation from it).
	refreshIssued bool
	// idToken holds the unverified claims of an OpenID Connect id_token, when one came and was readable.
	idToken *jwtClaims
	// errorsIn200: an attempt was refused with an OAuth error sent with HTTP 200 (errorIn200).
	errorsIn200 bool
}

// teach records in g what the exchange taught whatever its outcome: that the AS rejects `resource`,
// and that it sends its errors with HTTP 200. Both are deviations the package tolerates, and every
// tolerated deviation is recorded in the grant (see the package doc).
func (res issued) teach(g Grant) Grant {
	if res.omittedResource {
		g.OmitResource, g.Quirks = true, withQuirk(g.Quirks, QuirkResourceOmitted)
	}
	if res.errorsIn200 {
		g.Quirks = withQuirk(g.Quirks, QuirkErrorsIn200)
	}
	return g
}

// errorIn200 reports an OAuth error answered with HTTP 200 (GitHub, Slack), which do accepts and
// classifies by its code: the only *Error with both a Code and Status 200.
func errorIn200(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusOK && e.Code != ""
}

// tokenRequest POSTs form to the grant's token endpoint, adding `resource` unless the grant omits it
// (RFC 8707 §2.2: on every token request, refresh included) and the grant's ExtraParams. When the AS
// rejects `resource` the way Entra v2 does, it retries once without it and reports the refusal through
// omittedResource (set whatever the retry answers), for the grant to remember, as it reports an error
// sent with HTTP 200 through errorsIn200, error or not (see issued.teach). renewable says whether the
// token can be renewed without the user whatever the answer holds (see tokenResponse.token).
func (c *Client) tokenRequest(ctx context.Context, op string, g Grant, form url.Values, requested []string, renewable bool) (issued, error) {
	send := func(withResource bool) (issued, error) {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if withResource && g.Resource != "" {
			f.Set("resource", g.Resource)
		}
		addExtraParams(f, g.ExtraParams)
		var tr tokenResponse
		if err := c.postForm(ctx, op, g.TokenEndpoint, f, c.authOf(g), &tr); err != nil {
			return issued{}, err
		}
		if tr.AccessToken == "" {
			return issued{}, &Error{Op: op, Class: ClassMisconfigured, Err: errors.New("token response has no access_token")}
		}
		if tt := strings.ToLower(tr.TokenType); tt != "" && tt != "bearer" {
			// RFC 6749 §7.1: a client must not use a token type it does not understand (DPoP, MAC, ...).
			return issued{}, &Error{Op: op, Class: ClassMisconfigured, Err: errors.New("unsupported token_type " + tr.TokenType)}
		}
		out := issued{tok: tr.token(c.clock.Now(), requested, c.lifetime, renewable), refreshIssued: tr.RefreshToken != ""}
		if claims, ok := readJWT(tr.IDToken); ok {
			out.idToken = &claims
		}
		return out, nil
	}
	res, err := send(!g.OmitResource)
	in200 := errorIn200(err)
	if err != nil && !g.OmitResource && rejectsResource(err) {
		// The AS refused `resource` itself: that holds whatever the retry without it answers (a refusal
		// for another reason, such as a missing scope, must not make the next retry send it again).
		res, err = send(false)
		res.omittedResource = true
	}
	res.errorsIn200 = in200 || errorIn200(err)
	return res, err
}

// rejectsResource reports Entra v2's refusal of the `resource` parameter (AADSTS9010010), at the token
// endpoint (HTTP 400) or on the authorization redirect (invalid_target or invalid_request). This is
// the one place a provider code is read, as the issue allows: it only decides to retry without
// `resource`; classification still comes from the `error` field.
func rejectsResource(err error) bool {
	var e *Error
	return errors.As(err, &e) && strings.Contains(e.Description, "AADSTS9010010") &&
		(e.Status == http.StatusBadRequest || e.Code == "invalid_target" || e.Code == "invalid_request")
}

// wantsScope reports an AS refusing a refresh because it carried no scope (Entra v2: invalid_request,
// AADSTS90014 "The required field 'scope' is missing"). Read from the description's words, it only
// decides to retry once with the scopes.
func wantsScope(err error) bool {
	var e *Error
	if !errors.As(err, &e) || (e.Code != "invalid_request" && e.Code != "invalid_scope") {
		return false
	}
	d := strings.ToLower(e.Description)
	return strings.Contains(d, "scope") && (strings.Contains(d, "missing") || strings.Contains(d, "required"))
}

// reservedParams are the parameters the protocol sets; ExtraParams may not name them.
var reservedParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "state": true, "scope": true,
	"code_challenge": true, "code_challenge_method": true, "resource": true, "grant_type": true,
	"code": true, "code_verifier": true, "refresh_token": true, "client_secret": true,
	"client_assertion": true, "client_assertion_type": true, "device_code": true, "assertion": true,
	"subject_token": true, "subject_token_type": true, "requested_token_type": true, "iss": true,
	// These would change the request's shape: a JAR request object or a PAR request_uri replaces
	// redirect_uri and the PKCE challenge, and another response_mode sends the code where the
	// loopback listener cannot read it.
	"request": true, "request_uri": true, "response_mode": true, "nonce": true,
}

// checkExtraParams refuses ExtraParams that would override the protocol's own parameters.
func checkExtraParams(p map[string]string) error {
	for k := range p {
		if k == "" || reservedParams[strings.ToLower(k)] {
			return &Error{Op: "sign in", Class: ClassMisconfigured, Err: fmt.Errorf("extra parameter %q is set by the protocol and cannot be given", k)}
		}
	}
	return nil
}

// addExtraParams adds the grant's extra parameters (e.g. Auth0's audience) without overriding any the
// request already has.
func addExtraParams(f url.Values, extra map[string]string) {
	for k, v := range extra {
		if !reservedParams[strings.ToLower(k)] && !f.Has(k) {
			f.Set(k, v)
		}
	}
}
