package engine

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authkeeper/authkeeper/oauth"
)

// TestBindingRoundTripsEveryGrantField: every field of oauth.Grant is kept in the keychain's binding
// and read back; a field added to Grant without a mapping fails here (the reflection check fills every
// field with a non-zero value).
func TestBindingRoundTripsEveryGrantField(t *testing.T) {
	g := oauth.Grant{
		Resource: "https://mcp.example/mcp", Issuer: "https://login.example/{tenantid}/v2.0",
		AuthorizationEndpoint: "https://login.example/a", TokenEndpoint: "https://login.example/t",
		RevocationEndpoint: "https://login.example/r", DeviceAuthorizationEndpoint: "https://login.example/d",
		RegistrationEndpoint: "https://login.example/reg", ClientID: "c", ClientSecret: "s",
		AuthMethod: oauth.AuthPrivateKeyJWT, Registration: oauth.RegistrationStatic, RedirectPort: 8123,
		OmitResource: true, Scopes: []string{"api://x/.default", "offline_access"},
		AdvertisedIssuer: "https://login.example/organizations/v2.0", TenantIssuer: "https://login.example/t1/v2.0",
		ScopeOnRefresh: true, ExtraParams: map[string]string{"audience": "https://api.example"},
		GrantType: oauth.GrantClientCredentials, PrivateKey: "-----BEGIN PRIVATE KEY-----\n", KeyID: "k1",
		IdPTokenEndpoint: "https://idp.example/token", IdPClientID: "idp-client", IdPClientSecret: "idp-secret",
		Rotation: oauth.RotationRotating, Quirks: []oauth.Quirk{oauth.QuirkIssuerTemplate, oauth.QuirkScopeOnRefresh},
	}
	v := reflect.ValueOf(g)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the test leaves Grant.%s zero: give it a value", v.Type().Field(i).Name)
		}
	}
	if diff := cmp.Diff(g, grantOf(bindingOf(g))); diff != "" {
		t.Errorf("grantOf(bindingOf(g)) (-want +got):\n%s", diff)
	}
	b := bindingOf(g)
	b.ExtraParams["audience"] = "changed"
	b.RequestedScopes[0] = "changed"
	if g.ExtraParams["audience"] != "https://api.example" || g.Scopes[0] != "api://x/.default" {
		t.Error("the binding shares maps or slices with the grant")
	}
}
