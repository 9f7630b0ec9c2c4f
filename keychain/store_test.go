package keychain

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testRecord returns a record whose secrets are recognisable (so leaks are detectable) and access token
// has the given size.
func testRecord(accessLen int) Record {
	tok := make([]byte, accessLen)
	for i := range tok {
		tok[i] = "SECRETaccess0123456789"[i%22]
	}
	return Record{
		AccessToken:  string(tok),
		RefreshToken: "SECRETrefresh-1",
		Expiry:       time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC),
		Scopes:       []string{"mcp:read", "mcp:write"},
		TokenType:    "Bearer",
		Binding: Binding{
			ServerURL: "https://mcp.example.com/mcp", Resource: "https://mcp.example.com/mcp",
			Issuer: "https://login.example.com", TokenEndpoint: "https://login.example.com/token",
			ClientID: "client-1", ClientSecret: "SECRETclient", RegistrationMethod: "dynamic",
			RegistrationAccessToken: "SECRETregistration", RegistrationClientURI: "https://login.example.com/reg/1",
			RequestedScopes: []string{"mcp:read", "mcp:write", "offline_access"},
		},
	}
}

// checkStoreContract pins what every Store promises; each implementation's test runs it.
func checkStoreContract(t *testing.T, s Store) {
	t.Helper()
	ignoreBookkeeping := cmp.FilterPath(func(p cmp.Path) bool {
		n := p.Last().String()
		return n == ".Revision" || n == ".Written"
	}, cmp.Ignore())

	if _, err := s.Get("contract"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Put: err = %v, want ErrNotFound", err)
	}
	want := testRecord(100)
	want.Revision = 42 // ignored by Put
	got, err := s.Put("contract", want)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got.Revision != 1 || got.Written.IsZero() {
		t.Errorf("first Put: revision %d written %v, want revision 1 and a time", got.Revision, got.Written)
	}
	if diff := cmp.Diff(want, got, ignoreBookkeeping); diff != "" {
		t.Errorf("Put returned (-want +got):\n%s", diff)
	}
	read, err := s.Get("contract")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("Get after Put (-put +get):\n%s", diff)
	}
	// Neither the record passed to Put, nor the one it returned, nor the one Get returned shares a
	// slice with the store.
	stored, fresh := got, testRecord(0) // fresh slices holding what was stored
	stored.Scopes, stored.Binding.RequestedScopes = fresh.Scopes, fresh.Binding.RequestedScopes
	for _, r := range []*Record{&want, &got, &read} {
		r.Scopes[0], r.Binding.RequestedScopes[0] = "mutated", "mutated"
	}
	if again, err := s.Get("contract"); err != nil {
		t.Fatalf("Get: %v", err)
	} else if diff := cmp.Diff(stored, again); diff != "" {
		t.Errorf("Get after mutating slices of records passed and returned (-stored +get):\n%s", diff)
	}

	update := testRecord(200)
	update.RefreshToken = "SECRETrefresh-2"
	got2, err := s.Put("contract", update)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got2.Revision != 2 {
		t.Errorf("update: revision %d, want 2", got2.Revision)
	}
	read2, err := s.Get("contract")
	if err != nil {
		t.Fatalf("Get after update: %v", err)
	}
	if diff := cmp.Diff(got2, read2); diff != "" {
		t.Errorf("Get after update (-put +get):\n%s", diff)
	}

	if err := s.Delete("contract"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get("contract"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete("contract"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: err = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "a#b", "a/b", string(make([]byte, 200))} {
		if _, err := s.Put(bad, want); err == nil {
			t.Errorf("Put(%q) accepted an invalid name", bad)
		}
	}
}

func TestMemoryStoreKeepsTheStoreContract(t *testing.T) {
	checkStoreContract(t, NewMemoryStore(nil))
}

func TestMemoryStoreStampsWrittenFromItsClock(t *testing.T) {
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	s := NewMemoryStore(func() time.Time { return at })
	got, err := s.Put("a", Record{})
	if err != nil || !got.Written.Equal(at) {
		t.Fatalf("Put = %v, %v; want Written %v", got.Written, err, at)
	}
}
