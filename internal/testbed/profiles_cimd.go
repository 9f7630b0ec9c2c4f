package testbed

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// cimdHost is ProfileCIMD's https server of client ID metadata documents on 127.0.0.1. Its
// certificate is httptest's self-signed one, written to caFile for node's NODE_EXTRA_CA_CERTS, so
// oidc-provider fetches the documents over verified TLS as it would from a real client's host.
// Safe for concurrent use.
type cimdHost struct {
	origin string // https://127.0.0.1:PORT
	caFile string

	mu       sync.Mutex
	docs     map[string][]byte // path -> document
	requests int
}

func newCIMDHost(t testing.TB) *cimdHost {
	t.Helper()
	h := &cimdHost{docs: map[string][]byte{}}
	srv := httptest.NewTLSServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.origin = srv.URL
	h.caFile = filepath.Join(TempDir(t), "cimd-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(h.caFile, ca, 0o600); err != nil {
		t.Fatalf("cimd host CA: %v", err)
	}
	return h
}

func (h *cimdHost) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests++
	doc, ok := h.docs[r.URL.Path]
	h.mu.Unlock()
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=30") // oidc-provider's minimum cache time anyway
	w.Write(doc)
}

// PublishClientMetadata serves doc, a client ID metadata document, from the ProfileCIMD server's
// loopback https host at a fresh path, and returns its URL — the client_id. A document without
// "client_id" gets that URL as its client_id; one with a client_id is served as is (a mismatch
// makes oidc-provider refuse the client). oidc-provider caches a fetched document for at least
// 30 s, so publish a new one rather than changing a served one.
func (a *AuthServer) PublishClientMetadata(t testing.TB, doc []byte) string {
	t.Helper()
	if a.cimd == nil {
		t.Fatal("PublishClientMetadata needs ProfileCIMD")
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("PublishClientMetadata: the document is not a JSON object: %v", err)
	}
	a.cimd.mu.Lock()
	defer a.cimd.mu.Unlock()
	path := fmt.Sprintf("/clients/%d/client-metadata.json", len(a.cimd.docs)+1)
	id := a.cimd.origin + path
	if _, ok := m["client_id"]; !ok {
		m["client_id"] = id
		var err error
		if doc, err = json.Marshal(m); err != nil {
			t.Fatalf("PublishClientMetadata: %v", err)
		}
	}
	a.cimd.docs[path] = doc
	return id
}

// ClientMetadataRequests returns how many requests the ProfileCIMD document host has answered
// (oidc-provider's fetches), or 0 under another profile.
func (a *AuthServer) ClientMetadataRequests() int {
	if a.cimd == nil {
		return 0
	}
	a.cimd.mu.Lock()
	defer a.cimd.mu.Unlock()
	return a.cimd.requests
}
