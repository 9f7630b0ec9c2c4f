package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// Moving a grant between two engines (ExportBegin/Commit/Abort, Import), each with a store of its
// own, on static-token servers: what each step leaves in the settings and the store, and that every
// refusal changes nothing. The move of a real rotating grant, refreshed at the real AS after it, is
// tested in app (peers_transfer_test.go).

// transferEngine starts an engine on private directories and store, and adds static-token servers
// name → token (URL http://127.0.0.1:9/NAME).
func transferEngine(t *testing.T, store keychain.Store, servers map[string]string) (*Engine, Paths) {
	t.Helper()
	dir := testbed.TempDir(t)
	p := Paths{ConfigDir: filepath.Join(dir, "config"), StateDir: filepath.Join(dir, "state"), RuntimeDir: filepath.Join(dir, "run")}
	e := startTransferEngine(t, p, store)
	for name, tok := range servers {
		if err := e.Add(context.Background(), AddRequest{Name: name, URL: "http://127.0.0.1:9/" + name, StaticToken: tok,
			StaticExpiry: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	return e, p
}

func startTransferEngine(t *testing.T, p Paths, store keychain.Store) *Engine {
	t.Helper()
	e, err := New(Config{Paths: p, NoProxy: true, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// configured reports whether name is in the settings file on disk (not only in memory).
func configured(t *testing.T, p Paths, name string) bool {
	t.Helper()
	conf, err := keychain.NewConfigFile(p.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := conf.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range s.Servers {
		if srv.Name == name {
			return true
		}
	}
	return false
}

func TestExportThenImportMovesTheServerAndItsCredentialsWithoutCopying(t *testing.T) {
	storeA, storeB := keychain.NewMemoryStore(nil), keychain.NewMemoryStore(nil)
	a, pa := transferEngine(t, storeA, map[string]string{"s1": "token-one", "other": "token-two"})
	b, pb := transferEngine(t, storeB, nil)
	ctx := context.Background()

	tr, err := a.ExportBegin(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Server.URL != "http://127.0.0.1:9/s1" || tr.Record.AccessToken != "token-one" {
		t.Fatalf("exported %s with a record holding the token: %t", tr.Server.URL, tr.Record.AccessToken == "token-one")
	}
	// Begun: nothing here serves or refreshes it any more, even after a restart, but the record stays
	// until the transfer is out.
	if _, err := a.Token(ctx, "s1"); !errors.Is(err, ErrUnknownServer) {
		t.Errorf("Token after ExportBegin = %v, want ErrUnknownServer", err)
	}
	if configured(t, pa, "s1") {
		t.Error("the settings file still names the server being exported: a restart would refresh it again")
	}
	if _, err := storeA.Get("s1"); err != nil {
		t.Errorf("the record is gone before the transfer was written out: %v", err)
	}
	if err := a.ExportCommit("s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := storeA.Get("s1"); !errors.Is(err, keychain.ErrNotFound) {
		t.Errorf("record after ExportCommit: %v, want ErrNotFound", err)
	}
	if err := a.ExportCommit("s1"); err != nil {
		t.Errorf("a second ExportCommit = %v, want nil (idempotent)", err)
	}
	if tok, err := a.Token(ctx, "other"); err != nil || tok != "token-two" {
		t.Errorf("the other server serves %t, %v", tok == "token-two", err)
	}

	st, err := b.Import(ctx, ImportRequest{Transfer: tr, From: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "s1" || st.URL != tr.Server.URL || !st.Expiry.Equal(tr.Record.Expiry) || st.State != StateFresh {
		t.Errorf("import status %+v, want s1 at %s, fresh, expiring %v", st, tr.Server.URL, tr.Record.Expiry)
	}
	if tok, err := b.Token(ctx, "s1"); err != nil || tok != "token-one" {
		t.Errorf("B serves the moved token: %t, %v", tok == "token-one", err)
	}
	if !configured(t, pb, "s1") {
		t.Error("B's settings file does not name the imported server")
	}
	if rec, err := storeB.Get("s1"); err != nil || rec.AccessToken != "token-one" {
		t.Errorf("B's store holds the moved record: %v", err)
	}
}

func TestExportAbortServesTheServerHereAgain(t *testing.T) {
	store := keychain.NewMemoryStore(nil)
	a, pa := transferEngine(t, store, map[string]string{"s1": "token-one"})
	ctx := context.Background()
	tr, err := a.ExportBegin(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ExportAbort(tr.Server); err != nil {
		t.Fatal(err)
	}
	if tok, err := a.Token(ctx, "s1"); err != nil || tok != "token-one" {
		t.Errorf("after ExportAbort the server serves %t, %v", tok == "token-one", err)
	}
	if !configured(t, pa, "s1") {
		t.Error("after ExportAbort the settings file does not name the server")
	}
	if err := a.ExportCommit("s1"); !errors.Is(err, ErrServerExists) {
		t.Errorf("ExportCommit of a server configured again = %v, want ErrServerExists", err)
	}
	if _, err := store.Get("s1"); err != nil {
		t.Errorf("ExportCommit deleted the record of a server configured again: %v", err)
	}
	if err := a.ExportAbort(tr.Server); !errors.Is(err, ErrServerExists) {
		t.Errorf("a second ExportAbort = %v, want ErrServerExists", err)
	}
}

// TestExportBegunButNeverFinishedIsNotRefreshedAfterARestart: an exporter that dies after
// ExportBegin (its output may have reached the target) leaves a server that no engine here serves.
func TestExportBegunButNeverFinishedIsNotRefreshedAfterARestart(t *testing.T) {
	store := keychain.NewMemoryStore(nil)
	a, pa := transferEngine(t, store, map[string]string{"s1": "token-one"})
	if _, err := a.ExportBegin(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	again := startTransferEngine(t, pa, store)
	if _, err := again.Server("s1"); !errors.Is(err, ErrUnknownServer) {
		t.Errorf("a restarted engine configures the server whose export began: %v", err)
	}
}

func TestExportRefusesAServerWithoutCredentialsAndKeepsIt(t *testing.T) {
	store := keychain.NewMemoryStore(nil)
	a, pa := transferEngine(t, store, map[string]string{"s1": "token-one"})
	ctx := context.Background()
	if err := a.Logout(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExportBegin(ctx, "s1"); err == nil || !strings.Contains(err.Error(), "no credentials here to move") {
		t.Fatalf("ExportBegin of a signed-out server = %v, want a refusal", err)
	}
	if _, err := a.Server("s1"); err != nil || !configured(t, pa, "s1") {
		t.Errorf("the refused export removed the server: %v", err)
	}
	// Its keeper runs again (a closed one would answer errClosed): it waits for a sign-in, as before.
	if _, err := a.Token(ctx, "s1"); !errors.Is(err, ErrNeedsSignIn) {
		t.Errorf("Token after the refused export = %v, want ErrNeedsSignIn", err)
	}
	if _, err := a.ExportBegin(ctx, "nope"); !errors.Is(err, ErrUnknownServer) {
		t.Errorf("ExportBegin of an unknown server = %v, want ErrUnknownServer", err)
	}
}

func TestImportRefusesWhatWouldOverwriteAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	in := Transfer{Server: keychain.Server{Name: "s1", URL: "http://127.0.0.1:9/s1"},
		Record: keychain.Record{AccessToken: "moved-token", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour),
			Binding: keychain.Binding{RegistrationMethod: string(RegistrationStaticToken)}}}
	for _, tt := range []struct {
		name    string
		req     ImportRequest
		want    error  // nil: imported
		serves  string // what s1 serves after the import
		message string // in the error
	}{
		{name: "credentials stored", req: ImportRequest{Transfer: in}, want: ErrHasCredentials, serves: "token-here"},
		{name: "credentials stored, replaced", req: ImportRequest{Transfer: in, Replace: true}, serves: "moved-token"},
		{name: "another URL", want: ErrURLMismatch, serves: "token-here", message: "http://127.0.0.1:9/s1 here but https://elsewhere.example/mcp",
			req: ImportRequest{Replace: true, Transfer: Transfer{Server: keychain.Server{Name: "s1", URL: "https://elsewhere.example/mcp"}, Record: in.Record}}},
		{name: "plain http to another host", serves: "token-here", message: "https",
			req: ImportRequest{Replace: true, Transfer: Transfer{Server: keychain.Server{Name: "s2", URL: "http://mcp.example.com/mcp"}, Record: in.Record}}},
		{name: "invalid name", serves: "token-here", message: "server name",
			req: ImportRequest{Transfer: Transfer{Server: keychain.Server{Name: "a/b", URL: "http://127.0.0.1:9/x"}, Record: in.Record}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := keychain.NewMemoryStore(nil)
			b, pb := transferEngine(t, store, map[string]string{"s1": "token-here"})
			before, _ := os.ReadFile(filepath.Join(pb.ConfigDir, "config.json"))
			_, err := b.Import(ctx, tt.req)
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Import = %v, want %v", err, tt.want)
			case tt.want == nil && tt.message == "" && err != nil:
				t.Errorf("Import = %v, want success", err)
			case tt.message != "" && (err == nil || !strings.Contains(err.Error(), tt.message)):
				t.Errorf("Import = %v, want an error saying %q", err, tt.message)
			}
			if tok, err := b.Token(ctx, "s1"); err != nil || tok != tt.serves {
				t.Errorf("s1 serves the expected token: %t (%v)", tok == tt.serves, err)
			}
			if rec, _ := store.Get("s1"); rec.AccessToken != tt.serves {
				t.Error("the store does not hold the token s1 serves")
			}
			if after, _ := os.ReadFile(filepath.Join(pb.ConfigDir, "config.json")); string(after) != string(before) {
				t.Errorf("the settings changed:\n%s\nwas:\n%s", after, before)
			}
			if _, err := store.Get("s2"); !errors.Is(err, keychain.ErrNotFound) {
				t.Errorf("a refused import stored a record: %v", err)
			}
		})
	}
}
