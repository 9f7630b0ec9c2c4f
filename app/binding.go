package app

import (
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// bindingOf maps an OAuth grant onto the keychain's binding. The whole grant is kept, because a refresh
// after a restart must not need discovery again (the AS may be down when the app starts).
func bindingOf(g oauth.Grant) keychain.Binding {
	return keychain.Binding{
		ServerURL:             g.Resource,
		Resource:              g.Resource,
		Issuer:                g.Issuer,
		AuthorizationEndpoint: g.AuthorizationEndpoint,
		TokenEndpoint:         g.TokenEndpoint,
		RevocationEndpoint:    g.RevocationEndpoint,
		DeviceEndpoint:        g.DeviceAuthorizationEndpoint,
		RegistrationEndpoint:  g.RegistrationEndpoint,
		ClientID:              g.ClientID,
		ClientSecret:          g.ClientSecret,
		AuthMethod:            string(g.AuthMethod),
		RegistrationMethod:    string(g.Registration),
		RedirectPort:          g.RedirectPort,
		OmitResource:          g.OmitResource,
		RequestedScopes:       g.Scopes,
	}
}

// grantOf is the inverse of bindingOf.
func grantOf(b keychain.Binding) oauth.Grant {
	return oauth.Grant{
		Resource:                    b.Resource,
		Issuer:                      b.Issuer,
		AuthorizationEndpoint:       b.AuthorizationEndpoint,
		TokenEndpoint:               b.TokenEndpoint,
		RevocationEndpoint:          b.RevocationEndpoint,
		DeviceAuthorizationEndpoint: b.DeviceEndpoint,
		RegistrationEndpoint:        b.RegistrationEndpoint,
		ClientID:                    b.ClientID,
		ClientSecret:                b.ClientSecret,
		AuthMethod:                  oauth.AuthMethod(b.AuthMethod),
		Registration:                oauth.RegistrationMethod(b.RegistrationMethod),
		RedirectPort:                b.RedirectPort,
		OmitResource:                b.OmitResource,
		Scopes:                      b.RequestedScopes,
	}
}

// tokenOf extracts the token pair from a stored record.
func tokenOf(r keychain.Record) oauth.Token {
	return oauth.Token{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, TokenType: r.TokenType,
		Expiry: r.Expiry, Scopes: r.Scopes}
}
