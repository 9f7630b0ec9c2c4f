package app

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// oauthParameterNames are the parameters of the IANA "OAuth Parameters" registry, with a few the
// providers use besides (audience, prompt) and case variants: the names a user could give as
// `--param NAME=…`.
var oauthParameterNames = []string{
	"client_id", "client_secret", "response_type", "redirect_uri", "scope", "state", "code", "error",
	"error_description", "error_uri", "grant_type", "access_token", "token_type", "expires_in", "username",
	"password", "refresh_token", "nonce", "display", "prompt", "max_age", "ui_locales", "claims_locales",
	"id_token_hint", "login_hint", "acr_values", "claims", "registration", "request", "request_uri",
	"id_token", "session_state", "assertion", "client_assertion", "client_assertion_type", "code_verifier",
	"code_challenge", "code_challenge_method", "claim_token", "pct", "rpt", "ticket", "upgraded", "vtr",
	"device_code", "resource", "audience", "requested_token_type", "subject_token", "subject_token_type",
	"actor_token", "actor_token_type", "issued_token_type", "response_mode", "nfv_token", "iss", "sub",
	"aud", "exp", "nbf", "iat", "jti", "ace_profile", "nonce1", "nonce2", "ace_client_recipientid",
	"ace_server_recipientid", "req_cnf", "rs_cnf", "cnf", "authorization_details", "dpop_jkt",
	"sign_info", "kdcchallenge", "trust_chain", "user_code", "organization",
	"Client_ID", "SCOPE", "Request_URI", "Response_Mode", "Subject_Token",
}

// TestReservedParametersAgreeBetweenTheSettingsAndTheOAuthClient: the settings (keychain.Server.Validate)
// and the OAuth client (SignIn's check of ExtraParams) keep separate lists of the parameters a user may
// not set — keychain does not import oauth — and must refuse exactly the same names: a name only the
// settings refuse is a setting the user cannot save for no reason, one only the OAuth client refuses is
// a saved server that can never sign in. Both validators are called, not their lists compared.
func TestReservedParametersAgreeBetweenTheSettingsAndTheOAuthClient(t *testing.T) {
	client, err := oauth.New(oauth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	probe := &oauth.Probe{ServerURL: "https://mcp.example/mcp", Requirement: oauth.OAuthSignIn, Resource: "https://mcp.example/mcp",
		AuthServer: &oauth.ASMetadata{Issuer: "https://as.example", AuthorizationEndpoint: "https://as.example/authorize",
			TokenEndpoint: "https://as.example/token", CodeChallengeMethodsSupported: []string{"S256"}},
		PKCE: oauth.PKCEAdvertised, Registration: oauth.RegistrationStatic}
	for _, name := range oauthParameterNames {
		t.Run(name, func(t *testing.T) {
			settingsRefuse := keychain.Server{Name: "x", URL: "https://mcp.example/mcp", Params: map[string]string{name: "v"}}.Validate() != nil

			// The OAuth client either refuses the parameter before anything is sent, or puts it on the
			// authorization request; the sign-in is abandoned there.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var authURL string
			_, _, err := client.SignIn(ctx, probe, oauth.SignInOptions{Client: &oauth.StaticClient{ID: "authkeeper"},
				ExtraParams: map[string]string{name: "v"},
				OnURL:       func(u string) { authURL = u; cancel() }})
			oauthRefuses := authURL == ""
			switch {
			case oauthRefuses && !errors.Is(err, oauth.ErrMisconfigured):
				t.Fatalf("SignIn = %v before any authorization URL, want a misconfiguration", err)
			case !oauthRefuses:
				u, perr := url.Parse(authURL)
				if perr != nil || !u.Query().Has(name) {
					t.Fatalf("the authorization URL %q does not carry %s although it was accepted", authURL, name)
				}
			}
			if settingsRefuse != oauthRefuses {
				t.Errorf("%s: the settings refuse it: %t, the OAuth client refuses it: %t; both lists must match "+
					"(keychain/config.go and oauth/tokenreq.go reservedParams)", name, settingsRefuse, oauthRefuses)
			}
			if strings.ToLower(name) == "audience" && settingsRefuse {
				t.Error("audience (Auth0, Okta) must stay settable")
			}
		})
	}
}
