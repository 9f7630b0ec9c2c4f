package app

import (
	"context"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// TestClientMetadataURLComesFromTheSettingsUnlessTheFlagNamesOne: with prefs.client_metadata_url set,
// a sign-in at an authorization server that accepts Client ID Metadata Documents (oidc-provider's
// draft-02 support) uses that URL as the client id instead of registering; `serve
// --client-metadata-url` (Config.OAuth.ClientMetadataURL) wins over the setting.
func TestClientMetadataURLComesFromTheSettingsUnlessTheFlagNamesOne(t *testing.T) {
	testbed.StartKeyring(t)
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileCIMD})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"}})
	doc := []byte(`{"client_name":"authkeeper","application_type":"native","token_endpoint_auth_method":"none",` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],` +
		`"redirect_uris":["http://127.0.0.1/callback","http://localhost/callback"]}`)
	fromSettings, fromFlag := as.PublishClientMetadata(t, doc), as.PublishClientMetadata(t, doc)
	for _, tt := range []struct {
		name, flag, want string
	}{
		{"settings", "", fromSettings},
		{"flag", fromFlag, fromFlag},
	} {
		t.Run(tt.name, func(t *testing.T) {
			paths := tempPaths(t)
			conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := keychain.DefaultSettings()
			s.Prefs.ClientMetadataURL = fromSettings
			if err := conf.Save(s); err != nil {
				t.Fatal(err)
			}
			eng, err := newEngine(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Opener: testbed.NewBrowser(t, testbed.BrowserOptions{}),
				OAuth: oauth.Config{ClientMetadataURL: tt.flag}})
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { eng.Close() })
			name := "cimd-" + tt.name
			if err := eng.Add(context.Background(), engine.AddRequest{Name: name, URL: srv.URL}); err != nil {
				t.Fatalf("add: %v", err)
			}
			if b := storedRecord(t, name).Binding; b.ClientID != tt.want || b.RegistrationMethod != string(oauth.RegistrationMetadataDocument) {
				t.Errorf("client %q registered by %q, want the metadata document %q", b.ClientID, b.RegistrationMethod, tt.want)
			}
			if _, err := eng.Token(context.Background(), name); err != nil {
				t.Error(err)
			}
		})
	}
	if n := as.ClientMetadataRequests(); n == 0 {
		t.Error("the AS never fetched a client metadata document")
	}
}
