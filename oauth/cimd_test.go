package oauth

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// shippedClientMetadata is docs/client-metadata.json, the Client ID Metadata Document authkeeper ships,
// with its placeholder client_id removed (the host that serves it sets its own URL).
func shippedClientMetadata(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../docs/client-metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/client-metadata.json: %v", err)
	}
	if id, _ := doc["client_id"].(string); !strings.HasPrefix(id, "https://") || doc["token_endpoint_auth_method"] != "none" || doc["application_type"] != "native" {
		t.Fatalf("docs/client-metadata.json: client_id %q, auth %v, type %v", id, doc["token_endpoint_auth_method"], doc["application_type"])
	}
	delete(doc, "client_id")
	out, _ := json.Marshal(doc)
	return out
}

// TestCIMDSignInWithTheShippedDocument pins issue 11 point 6 against oidc-provider's Client ID
// Metadata Document support: with Config.ClientMetadataURL set and the AS advertising the feature, the
// document's URL is the client id (no dynamic registration), and sign-in, three refreshes and
// revocation work. Without the URL, the same AS gets a dynamic registration.
func TestCIMDSignInWithTheShippedDocument(t *testing.T) {
	as := testbed.AuthServerOptions{Profile: testbed.ProfileCIMD}
	b := newBench(t, benchOptions{as: as})
	url := b.as.PublishClientMetadata(t, shippedClientMetadata(t))
	client, err := New(Config{Opener: b.browser, ClientMetadataURL: url})
	if err != nil {
		t.Fatal(err)
	}
	dcr := b.client
	b.client = client
	p := b.probe(t)
	if !p.AuthServer.ClientIDMetadataDocumentSupported || p.Registration != RegistrationMetadataDocument {
		t.Fatalf("probe: supported %t, registration %q", p.AuthServer.ClientIDMetadataDocumentSupported, p.Registration)
	}
	tok, g := b.signIn(t, SignInOptions{})
	requireAccepted(t, b.mcp.URL, tok)
	if g.ClientID != url || g.Registration != RegistrationMetadataDocument || g.AuthMethod != AuthNone {
		t.Errorf("grant = %v", g)
	}
	if b.as.ClientMetadataRequests() == 0 {
		t.Error("the AS never fetched the document")
	}
	if slices.ContainsFunc(b.as.Events(t), func(e string) bool { return strings.HasPrefix(e, "client.registered") }) {
		t.Error("a client was registered dynamically although the metadata document route was open")
	}
	tok, g = refreshTimes(t, b, tok, g, 3)
	if err := b.client.Revoke(t.Context(), g, tok); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken); !errors.Is(err, ErrReauthRequired) {
		t.Errorf("Refresh after Revoke = %v, want re-auth", err)
	}
	b.client = dcr
	if p := b.probe(t); p.Registration != RegistrationDynamic {
		t.Errorf("without ClientMetadataURL the route is %q, want dynamic registration", p.Registration)
	}
}
