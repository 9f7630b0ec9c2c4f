//go:build !headless

package tray

import (
	"testing"

	"github.com/authkeeper/authkeeper/oauth"
)

func TestNormalizeURLTrimsSpacesAndAddsTheSchemeAHostNeeds(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"https://mcp.linear.app/mcp", "https://mcp.linear.app/mcp"},
		{"  https://mcp.linear.app/mcp \n", "https://mcp.linear.app/mcp"},
		{"\tmcp.linear.app/mcp  ", "https://mcp.linear.app/mcp"},
		{"mcp.linear.app", "https://mcp.linear.app"},
		{"mcp.example.com:8443/mcp?x=1", "https://mcp.example.com:8443/mcp?x=1"},
		{"//mcp.example.com/mcp", "https://mcp.example.com/mcp"},
		{"localhost:3000/mcp", "http://localhost:3000/mcp"},
		{"LocalHost/mcp", "http://LocalHost/mcp"},
		{" 127.0.0.1:8080/mcp ", "http://127.0.0.1:8080/mcp"},
		{"127.1.2.3/mcp", "http://127.1.2.3/mcp"},
		{"[::1]:8080/mcp", "http://[::1]:8080/mcp"},
		{"192.168.1.5:8080/mcp", "https://192.168.1.5:8080/mcp"}, // not loopback: plain http would be refused
		{"localhost.example.com/mcp", "https://localhost.example.com/mcp"},
		{"http://mcp.example.com/mcp", "http://mcp.example.com/mcp"}, // kept: the probe says why it is refused
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := normalizeURL(tt.in); got != tt.want {
				t.Errorf("normalizeURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNextStepSaysWhatHappensOnceTheUserGoesOn(t *testing.T) {
	as := &oauth.ASMetadata{Issuer: "https://auth.example.com/tenant"}
	device := &oauth.ASMetadata{Issuer: "https://auth.example.com", DeviceAuthorizationEndpoint: "https://auth.example.com/device"}
	tests := []struct {
		name    string
		p       *oauth.Probe
		machine bool
		want    string
	}{
		{"nothing found", nil, false, ""},
		{"browser", &oauth.Probe{Requirement: oauth.OAuthSignIn, AuthServer: as, Registration: oauth.RegistrationDynamic}, false,
			"Next: choose Sign in and your browser opens to sign in to auth.example.com. authkeeper then keeps the token fresh."},
		{"browser or device", &oauth.Probe{Requirement: oauth.OAuthSignIn, AuthServer: device, Registration: oauth.RegistrationDynamic}, false,
			"Next: choose Sign in and your browser opens to sign in to auth.example.com. authkeeper then keeps the token fresh. " +
				"No browser here? “Use device code” signs in from another device."},
		{"client id needed", &oauth.Probe{Requirement: oauth.OAuthSignIn, AuthServer: as}, false,
			"Next: enter the client id above, then choose Sign in: your browser opens to sign in to auth.example.com. " +
				"authkeeper then keeps the token fresh."},
		{"machine identity", &oauth.Probe{Requirement: oauth.OAuthSignIn, AuthServer: as}, true,
			"Next: choose Sign in. authkeeper asks auth.example.com for a token with the client id and secret above, " +
				"without a browser, and gets a new one before each expires."},
		{"static token", &oauth.Probe{Requirement: oauth.StaticToken}, false,
			"Next: paste the token or API key and choose Add. authkeeper stores it and sends it for you; " +
				"it cannot renew it, so give its expiry date if it has one."},
		{"no auth", &oauth.Probe{Requirement: oauth.NoAuth}, false,
			"Next: choose Add. There is nothing to sign in to; agents reach the server through authkeeper's proxy."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextStep(tt.p, tt.machine); got != tt.want {
				t.Errorf("nextStep = %q\nwant      %q", got, tt.want)
			}
		})
	}
}
