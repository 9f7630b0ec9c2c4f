package keychain

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
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
