package engine

import (
	"maps"
	"slices"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// bindingOf maps an OAuth grant onto the keychain's binding. The whole grant is kept, because a refresh
// after a restart must not need discovery again (the AS may be down when the app starts). Every Grant
// field has a Binding field; TestBindingRoundTripsEveryGrantField pins that.
func bindingOf(g oauth.Grant) keychain.Binding {
	var quirks []string
	for _, q := range g.Quirks {
		quirks = append(quirks, string(q))
	}
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
		RequestedScopes:       slices.Clone(g.Scopes),
		AdvertisedIssuer:      g.AdvertisedIssuer,
		TenantIssuer:          g.TenantIssuer,
		ScopeOnRefresh:        g.ScopeOnRefresh,
		ExtraParams:           maps.Clone(g.ExtraParams),
		GrantType:             string(g.GrantType),
		PrivateKey:            g.PrivateKey,
		KeyID:                 g.KeyID,
		IdPTokenEndpoint:      g.IdPTokenEndpoint,
		IdPClientID:           g.IdPClientID,
		IdPClientSecret:       g.IdPClientSecret,
		Rotation:              string(g.Rotation),
		Quirks:                quirks,
	}
}

// grantOf is the inverse of bindingOf.
func grantOf(b keychain.Binding) oauth.Grant {
	var quirks []oauth.Quirk
	for _, q := range b.Quirks {
		quirks = append(quirks, oauth.Quirk(q))
	}
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
		Scopes:                      slices.Clone(b.RequestedScopes),
		AdvertisedIssuer:            b.AdvertisedIssuer,
		TenantIssuer:                b.TenantIssuer,
		ScopeOnRefresh:              b.ScopeOnRefresh,
		ExtraParams:                 maps.Clone(b.ExtraParams),
		GrantType:                   oauth.GrantType(b.GrantType),
		PrivateKey:                  b.PrivateKey,
		KeyID:                       b.KeyID,
		IdPTokenEndpoint:            b.IdPTokenEndpoint,
		IdPClientID:                 b.IdPClientID,
		IdPClientSecret:             b.IdPClientSecret,
		Rotation:                    oauth.Rotation(b.Rotation),
		Quirks:                      quirks,
	}
}

// tokenOf extracts the token pair from a stored record.
func tokenOf(r keychain.Record) oauth.Token {
	return oauth.Token{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, TokenType: r.TokenType,
		Expiry: r.Expiry, Scopes: r.Scopes}
}
