//go:build !headless

package tray

import (
	"net/url"
	"strings"

	"github.com/authkeeper/authkeeper/oauth"
)

// This file holds what the Add server window makes of what the user pasted, and the words that say
// what happens next: pure functions, table-tested.

// normalizeURL is the URL the Add window uses for text as typed or pasted: without the spaces and line
// breaks around it, and with a scheme when it has none. A loopback host (localhost, 127.0.0.0/8, ::1)
// gets http://: a server on this computer rarely has a certificate, and the OAuth client accepts plain
// http for loopback only. Any other host gets https://, the only scheme the OAuth client accepts for
// it. A URL that names its scheme is kept as it is (a wrong one is refused by the probe, which says
// why).
func normalizeURL(text string) string {
	raw := strings.TrimSpace(text)
	if raw == "" || strings.Contains(raw, "://") {
		return raw
	}
	raw = strings.TrimPrefix(raw, "//")
	host := raw
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if oauth.IsLoopbackHost((&url.URL{Host: host}).Hostname()) { // the hosts oauth allows plain http to
		return "http://" + raw
	}
	return "https://" + raw
}

// nextStep says in plain words what happens once the user goes on, for finding p ("" when there is
// none). machine is the Advanced "machine identity" choice.
func nextStep(p *oauth.Probe, machine bool) string {
	if p == nil {
		return ""
	}
	switch p.Requirement {
	case oauth.OAuthSignIn:
		as := "its authorization server"
		if p.AuthServer != nil {
			if u, err := url.Parse(p.AuthServer.Issuer); err == nil && u.Host != "" {
				as = u.Host
			}
		}
		switch {
		case machine:
			return "Next: choose Sign in. authkeeper asks " + as + " for a token with the client id and secret above, " +
				"without a browser, and gets a new one before each expires."
		case p.Registration == "":
			return "Next: enter the client id above, then choose Sign in: your browser opens to sign in to " + as +
				". authkeeper then keeps the token fresh."
		}
		next := "Next: choose Sign in and your browser opens to sign in to " + as + ". authkeeper then keeps the token fresh."
		if p.AuthServer != nil && p.AuthServer.DeviceAuthorizationEndpoint != "" {
			next += " No browser here? “Use device code” signs in from another device."
		}
		return next
	case oauth.StaticToken:
		return "Next: paste the token or API key and choose Add. authkeeper stores it and sends it for you; " +
			"it cannot renew it, so give its expiry date if it has one."
	}
	return "Next: choose Add. There is nothing to sign in to; agents reach the server through authkeeper's proxy."
}
