package testbed

import "testing"

func TestIssuerMatchesExactOrOneTenantSegmentOfATemplate(t *testing.T) {
	const tmpl = "http://127.0.0.1:1/{tenantid}/v2.0"
	for _, c := range []struct {
		meta, iss string
		want      bool
	}{
		{"http://127.0.0.1:1", "http://127.0.0.1:1", true},
		{"http://127.0.0.1:1", "http://127.0.0.1:1/", false},
		{tmpl, "http://127.0.0.1:1/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", true},
		{tmpl, "http://127.0.0.1:1//v2.0", false},
		{tmpl, "http://127.0.0.1:1/a/b/v2.0", false},
		{tmpl, "http://127.0.0.1:2/a/v2.0", false},
		{tmpl, "http://127.0.0.1:1/a/v1.0", false},
		{tmpl, "http://127.0.0.1:1/organizations/v2.0", true}, // Entra's advertised multi-tenant issuer
	} {
		if got := issuerMatches(c.meta, c.iss); got != c.want {
			t.Errorf("issuerMatches(%q, %q) = %v, want %v", c.meta, c.iss, got, c.want)
		}
	}
}
