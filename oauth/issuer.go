package oauth

import (
	"fmt"
	"net/url"
	"strings"
)

// tenantPlaceholder is the path segment of a templated issuer: Entra's /common and /organizations
// metadata names its issuer https://login.microsoftonline.com/{tenantid}/v2.0, and every token and
// response then carries one concrete tenant's issuer in its place.
const tenantPlaceholder = "{tenantid}"

// isTemplate reports an issuer with the {tenantid} segment.
func isTemplate(issuer string) bool {
	return strings.Contains(strings.ToLower(issuer), tenantPlaceholder)
}

// matchTemplate reports whether issuer fits template: same scheme and host, the same path segments
// but for the {tenantid} one, which holds a non-empty segment in issuer; that segment is returned.
// Trailing slashes are ignored, as sameIssuer does.
func matchTemplate(template, issuer string) (tenant string, ok bool) {
	t, err1 := url.Parse(strings.TrimSuffix(template, "/"))
	u, err2 := url.Parse(strings.TrimSuffix(issuer, "/"))
	if err1 != nil || err2 != nil || t.Scheme != u.Scheme || !strings.EqualFold(t.Host, u.Host) || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	ts, us := strings.Split(t.Path, "/"), strings.Split(u.Path, "/")
	if len(ts) != len(us) {
		return "", false
	}
	for i := range ts {
		switch {
		case strings.EqualFold(ts[i], tenantPlaceholder):
			if us[i] == "" {
				return "", false
			}
			tenant = us[i]
		case ts[i] != us[i]:
			return "", false
		}
	}
	return tenant, tenant != ""
}

// concreteTenant reports whether issuer is the template filled with one real tenant: not a placeholder
// and not one of Entra's multi-tenant aliases, which name no tenant.
func concreteTenant(template, issuer string) bool {
	tenant, ok := matchTemplate(template, issuer)
	if !ok || strings.ContainsAny(tenant, "{}") {
		return false
	}
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers":
		return false
	}
	return true
}

// fillTemplate puts tenant in template's placeholder.
func fillTemplate(template, tenant string) string {
	i := strings.Index(strings.ToLower(template), tenantPlaceholder)
	if i < 0 {
		return template
	}
	return template[:i] + tenant + template[i+len(tenantPlaceholder):]
}

// resolveTenant decides the concrete issuer of a sign-in under a templated issuer from what the AS
// sent: the callback's `iss` (RFC 9207; already checked against the template), the id token's `iss`,
// and the access token's `iss` — or its `tid` when the access token comes from another host (Entra v1
// tokens are issued by sts.windows.net). Every issuer that names the template's host must fit it and
// agree with the others; one that does not is a mix-up (ErrIssuerMismatch). It returns "" when nothing
// readable named a tenant.
func resolveTenant(template, callbackIss string, res issued) (string, error) {
	tenant := callbackIss
	check := func(what, iss string) error {
		if iss == "" {
			return nil
		}
		if !concreteTenant(template, iss) {
			return fmt.Errorf("%w: the %s names issuer %q, which does not fit %q", ErrIssuerMismatch, what, iss, template)
		}
		if tenant != "" && !sameIssuer(tenant, iss) {
			return fmt.Errorf("%w: the %s names issuer %q, the sign-in %q", ErrIssuerMismatch, what, iss, tenant)
		}
		tenant = iss
		return nil
	}
	if res.idToken != nil {
		if err := check("id token", res.idToken.Iss); err != nil {
			return "", err
		}
	}
	if claims, ok := readJWT(res.tok.AccessToken); ok && claims.Iss != "" {
		if sameHost(claims.Iss, template) {
			if err := check("access token", claims.Iss); err != nil {
				return "", err
			}
		} else if tenant == "" && claims.Tid != "" && !strings.ContainsAny(claims.Tid, "/{}?#") {
			tenant = fillTemplate(template, claims.Tid)
		}
	}
	return tenant, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Host, ub.Host)
}
