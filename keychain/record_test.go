package keychain

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecordNeverPrintsSecrets(t *testing.T) {
	rec := testRecord(64)
	rec.Revision = 3
	secrets := []string{rec.AccessToken, rec.RefreshToken, rec.Binding.ClientSecret, rec.Binding.RegistrationAccessToken, "SECRET"}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("stored", "record", rec, "binding", rec.Binding)
	var texted bytes.Buffer
	slog.New(slog.NewTextHandler(&texted, nil)).Info("stored", "record", &rec)

	outputs := map[string]string{
		"String()":      rec.String(),
		"GoString()":    rec.GoString(),
		"slog JSON":     logged.String(),
		"slog text ptr": texted.String(),
		"error":         fmt.Errorf("refresh failed for %v", rec).Error(),
		"nested struct": fmt.Sprintf("%+v", struct{ R Record }{rec}),
		"pointer":       fmt.Sprintf("%v", &rec),
		"slice":         fmt.Sprintf("%v", []Record{rec}),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		outputs[verb] = fmt.Sprintf(verb, rec)
		outputs[verb+" binding"] = fmt.Sprintf(verb, rec.Binding)
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s leaks %q: %s", name, s, out)
			}
		}
	}
	// It must still be useful: the non-secret fields show.
	if s := rec.String(); !strings.Contains(s, "https://mcp.example.com/mcp") || !strings.Contains(s, "revision:3") {
		t.Errorf("String() lost the non-secret fields: %s", s)
	}
}

// TestRecordNeverPrintsAServerURLsQuery: a record written before resources dropped the query of the
// server's URL (where some servers take an API key) shows both URLs without it, in every printed form.
func TestRecordNeverPrintsAServerURLsQuery(t *testing.T) {
	rec := testRecord(16)
	rec.Binding.ServerURL = "https://mcp.example.com/mcp?api_key=SECRETquery#SECRETfragment"
	rec.Binding.Resource = rec.Binding.ServerURL
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("stored", "record", rec)
	for name, out := range map[string]string{
		"String()":         rec.String(),
		"%+v binding":      fmt.Sprintf("%+v", rec.Binding),
		"%#v":              fmt.Sprintf("%#v", rec),
		"slog JSON":        logged.String(),
		"binding String()": rec.Binding.String(),
	} {
		if strings.Contains(out, "SECRETquery") || strings.Contains(out, "SECRETfragment") {
			t.Errorf("%s shows the URL's query or fragment: %s", name, out)
		}
		if !strings.Contains(out, "https://mcp.example.com/mcp") {
			t.Errorf("%s lost the URL itself: %s", name, out)
		}
	}
}

func TestDecodeErrorsNeverQuoteThePayload(t *testing.T) {
	rec := testRecord(500)
	rec.Revision = 1
	chunks, gen, err := encodeRecord(rec, 64)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]string(nil), chunks...)
	damaged[1] = damaged[2] // a wrong chunk
	js, _ := base64.StdEncoding.DecodeString(strings.Join(chunks, ""))
	notJSON := base64.StdEncoding.EncodeToString(append([]byte("x"), js...))
	cases := map[string]struct {
		chunks []string
		gen    generation
	}{
		"checksum":   {damaged, gen},
		"not base64": {[]string{"%%%" + chunks[0]}, generation{Gen: 1, SHA256: digest([]string{"%%%" + chunks[0]})}},
		"not json":   {[]string{notJSON}, generation{Gen: 1, SHA256: digest([]string{notJSON})}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decodeRecord(c.chunks, c.gen)
			if err == nil {
				t.Fatal("decoded a damaged record")
			}
			for _, s := range []string{"SECRET", chunks[0][:16], chunks[2][:16]} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes the payload", err)
				}
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("damage reported as not found: %v", err)
			}
		})
	}
}

// TestRecordIssue11FieldsRoundTripAndStayRedacted: the binding fields added for provider quirks and
// machine identities and cross-app access survive a store's encoding, and the private key and the IdP
// client secret are secrets like the client secret, in every printed form.
func TestRecordIssue11FieldsRoundTripAndStayRedacted(t *testing.T) {
	rec := testRecord(16)
	rec.RefreshStarted = time.Date(2031, 1, 2, 3, 0, 0, 0, time.UTC)
	rec.Binding.AdvertisedIssuer = "https://mcp.example.com"
	rec.Binding.TenantIssuer = "https://login.example.com/t1/v2.0"
	rec.Binding.ScopeOnRefresh = true
	rec.Binding.ExtraParams = map[string]string{"audience": "https://api.example.com"}
	rec.Binding.GrantType = "client_credentials"
	rec.Binding.PrivateKey = "-----BEGIN PRIVATE KEY-----\nSECRETkey\n-----END PRIVATE KEY-----\n"
	rec.Binding.KeyID = "kid-1"
	rec.Binding.IdPTokenEndpoint = "https://idp.example.com/token"
	rec.Binding.IdPClientID = "idp-client"
	rec.Binding.IdPClientSecret = "SECRETidp"
	rec.Binding.Rotation = "rotating"
	rec.Binding.Quirks = []string{"issuer-mismatch", "scope-on-refresh"}

	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("stored", "record", rec)
	outputs := []string{rec.String(), rec.GoString(), logged.String(), fmt.Sprintf("%v %+v %#v %s %d", rec, rec, rec.Binding, rec.Binding, rec.Binding)}
	for _, out := range outputs {
		if strings.Contains(out, "SECRETkey") || strings.Contains(out, "SECRETidp") {
			t.Errorf("the private key or the IdP client secret leaks: %s", out)
		}
	}
	if !strings.Contains(rec.Binding.String(), "private_key:redacted") || !strings.Contains(rec.Binding.String(), "idp_client_secret:redacted") || !strings.Contains(rec.String(), "refresh_started:2031") {
		t.Errorf("String() lost the non-secret description: %s", rec)
	}
}
