package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
)

// Some MCP servers take an API key in their URL's query. The key reaches the server (the URL is used
// as configured) but is neither the grant's resource nor shown in an error, where it would reach
// events, the audit log and control replies.

// TestRecordWithoutResourceBindsTheURLWithoutItsQuery: a stored record that names no resource is bound
// to the server's URL as a sign-in would name it, without the query.
func TestRecordWithoutResourceBindsTheURLWithoutItsQuery(t *testing.T) {
	e, _ := transferEngine(t, keychain.NewMemoryStore(nil), nil)
	st := e.fromRecord(keychain.Server{Name: "q", URL: "https://mcp.example.com/mcp?api_key=SECRETkey"}, keychain.Record{})
	if got, want := st.grant.Resource, "https://mcp.example.com/mcp"; got != want {
		t.Errorf("resource %q, want %q", got, want)
	}
}

// TestAddNeverPrintsTheServerURLsQuery: a server that cannot be probed fails the add with an error
// that names its URL without the query.
func TestAddNeverPrintsTheServerURLsQuery(t *testing.T) {
	e, _ := transferEngine(t, keychain.NewMemoryStore(nil), nil)
	err := e.Add(context.Background(), AddRequest{Name: "q", URL: "http://127.0.0.1:9/mcp?api_key=SECRETkey"})
	if err == nil {
		t.Fatal("added a server nobody answers for")
	}
	if strings.Contains(err.Error(), "SECRETkey") {
		t.Errorf("the error shows the URL's query: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:9/mcp") {
		t.Errorf("the error does not name the server: %v", err)
	}
}

// TestFleetGrantBelongsToTheServer: an instance joins the grant the fleet holds under a name when the
// grant's resource is the server's URL but for the query (a grant stored with the query still
// matches); another URL under that name — even one the resource would cover — is refused with an
// error that shows neither URL's query.
func TestFleetGrantBelongsToTheServer(t *testing.T) {
	for _, c := range []struct {
		resource, url string
		foreign       bool
	}{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp", false},
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp?api_key=SECRETkey", false},
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp/other", true},
		{"https://mcp.example.com/mcp?api_key=SECRETold", "https://mcp.example.com/mcp?api_key=SECRETkey", false},
		{"https://mcp.example.com/other", "https://mcp.example.com/mcp?api_key=SECRETkey", true},
		{"https://elsewhere.example.com/mcp?api_key=SECRETold", "https://mcp.example.com/mcp", true},
	} {
		err := foreignFleetGrant("q", c.resource, c.url)
		if (err != nil) != c.foreign {
			t.Errorf("resource %s, URL %s: error %v, want foreign=%v", c.resource, c.url, err, c.foreign)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("the error shows a URL's query: %v", err)
		}
	}
}

// TestAddOfAServerThatWantsAKeyNeverPrintsItsQuery: a server that answers 401 without a Bearer
// challenge wants a static token; the error that says so names its URL without the query, though the
// key there was the wrong one.
func TestAddOfAServerThatWantsAKeyNeverPrintsItsQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	e, _ := transferEngine(t, keychain.NewMemoryStore(nil), nil)
	err := e.Add(context.Background(), AddRequest{Name: "q", URL: srv.URL + "/mcp?api_key=SECRETkey"})
	if err == nil || !strings.Contains(err.Error(), "static token") {
		t.Fatalf("Add = %v, want the error that asks for a static token", err)
	}
	if strings.Contains(err.Error(), "SECRETkey") {
		t.Errorf("the error shows the URL's query: %v", err)
	}
}

// TestStaticTokenGrantNamesTheURLWithoutItsQuery: a server added with a static token keeps its URL,
// query and all, in the settings (the key reaches the server), while its grant's resource, which the
// keychain's record and status lines show, has no query.
func TestStaticTokenGrantNamesTheURLWithoutItsQuery(t *testing.T) {
	store := keychain.NewMemoryStore(nil)
	e, _ := transferEngine(t, store, nil)
	url := "http://127.0.0.1:9/mcp?api_key=SECRETkey"
	if err := e.Add(context.Background(), AddRequest{Name: "q", URL: url, StaticToken: "tok",
		StaticExpiry: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if s, err := e.Server("q"); err != nil || s.URL != url {
		t.Errorf("configured URL %q (%v), want %q", s.URL, err, url)
	}
	rec, err := store.Get("q")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Binding.Resource, "http://127.0.0.1:9/mcp"; got != want {
		t.Errorf("resource %q, want %q", got, want)
	}
}
