package oauth

import (
	"slices"
	"strings"
)

// chooseScopes applies the spec's order: the challenge's scope, else the resource's scopes_supported;
// then offline_access when the AS advertises it, so that a refresh token is issued. No scope repeats.
func chooseScopes(challenge, resource, as []string) []string {
	s := challenge
	if len(s) == 0 {
		s = resource
	}
	s = unionScopes(s)
	if slices.Contains(as, "offline_access") && !slices.Contains(s, "offline_access") {
		s = append(s, "offline_access")
	}
	return s
}

// unionScopes concatenates lists, keeping each scope once, in first-seen order.
func unionScopes(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// requestScopes is the scope list to send: deduplicated, and without resource scopes beside an Entra
// `.default` one. Entra refuses a `.default` scope mixed with other resource scopes (AADSTS70011), and
// the scopes it grants for `.default` are the expanded permissions: a list built from granted scopes
// (a step-up union) would mix them. The `.default` scopes stay, with the OpenID Connect and
// offline_access ones, which Entra allows beside them.
func requestScopes(scopes []string) []string {
	s := unionScopes(scopes)
	if !slices.ContainsFunc(s, isDefaultScope) {
		return s
	}
	return slices.DeleteFunc(s, func(x string) bool {
		return !isDefaultScope(x) && !oidcScopes[x]
	})
}

func isDefaultScope(s string) bool { return strings.HasSuffix(s, "/.default") || s == ".default" }

// oidcScopes are the scopes that name no resource.
var oidcScopes = map[string]bool{"offline_access": true, "openid": true, "profile": true, "email": true}
