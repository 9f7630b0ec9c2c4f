package app

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/fleet"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Moving a grant between two machines against the real peers: engine A (the laptop) signs in at the
// real AS and keeps its grant in the real keyring; engine B (the headless box) has directories and a
// file store of its own. `authkeeper export | authkeeper import` moves the grant; then B refreshes it
// at the AS on its own schedule and serves tool calls with it, and the AS never sees a refresh token
// twice.

// fleetKeyVars returns a fresh fleet key line and the environment naming it through a 0600 key file.
func fleetKeyVars(t *testing.T, id string) (string, map[string]string) {
	t.Helper()
	line, err := fleet.NewKeyLine(id)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return line, map[string]string{envFleetKeyFile: path}
}

// machineB points the command line at a second machine's directories (what DefaultPaths reads, as
// t.Setenv: os.UserConfigDir reads the process's environment) and returns a restore of the first's.
func machineB(t *testing.T) (engine.Paths, func()) {
	t.Helper()
	names := []string{"HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"}
	saved := map[string]string{}
	for _, n := range names {
		saved[n] = os.Getenv(n)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, ".local", "state"))
	t.Setenv("XDG_RUNTIME_DIR", shortRuntimeDir(t))
	paths, err := engine.DefaultPaths(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return paths, func() {
		for _, n := range names {
			t.Setenv(n, saved[n])
		}
	}
}

// regexpKept finds where import kept a grant it could not import.
var regexpKept = regexp.MustCompile(`kept in (\S+?): fix`)

func TestExportImportMovesARotatingGrantThatTheTargetThenRefreshesAlone(t *testing.T) {
	a := newBench(t, benchOptions{Home: true, AS: testbed.AuthServerOptions{AccessTokenTTL: 6 * time.Second}})
	ctx := context.Background()
	// One refresh on A first: what moves is a rotated pair, not the sign-in's.
	if err := a.eng.Refresh(ctx, "bench", "test"); err != nil {
		t.Fatal(err)
	}
	moved := proxyRecord(t)
	secrets := []string{moved.AccessToken, moved.RefreshToken}
	_, vars := fleetKeyVars(t, "k1")

	code, line, errOut := runCLIWith(t, "", vars, "export", "bench")
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	if !strings.HasPrefix(line, grantPrefix) || strings.Count(line, "\n") != 1 {
		t.Fatalf("export printed %d lines, want one grant line", strings.Count(line, "\n"))
	}
	if !strings.Contains(errOut, "moved bench") || !strings.Contains(errOut, "no longer refreshes it") {
		t.Errorf("export's stderr does not say what happened: %q", errOut)
	}
	assertNoSecrets(t, "export output", line+errOut, secrets...)
	// A forgot the server and its record, and revoked nothing (B's refresh below would fail).
	if _, err := a.eng.Server("bench"); !errors.Is(err, engine.ErrUnknownServer) {
		t.Errorf("A still has the server: %v", err)
	}
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Get("bench"); !errors.Is(err, keychain.ErrNotFound) {
		t.Errorf("A's keyring still holds the record: %v", err)
	}
	refreshesAtA := a.as.TokenRequests(t, "refresh_token")

	pathsB, backToA := machineB(t)
	defer backToA()
	b := startEngine(t, engine.Config{Paths: pathsB, ProxyAddr: "127.0.0.1:0", StoreKind: "file"})
	storeB, err := keychain.NewFileStore(keychain.FileConfig{Dir: pathsB.ConfigDir})
	if err != nil {
		t.Fatal(err)
	}
	nothingOnB := func(t *testing.T) {
		t.Helper()
		if _, err := b.Server("bench"); !errors.Is(err, engine.ErrUnknownServer) {
			t.Errorf("B has the server after a refused import: %v", err)
		}
		if _, err := storeB.Get("bench"); !errors.Is(err, keychain.ErrNotFound) {
			t.Errorf("B stored a record after a refused import: %v", err)
		}
	}
	_, ch, cancel := b.Subscribe()
	defer cancel()
	wrongKey, _ := fleet.NewKeyLine("k1")
	otherID, _ := fleet.NewKeyLine("k2")
	sealed, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(line), grantPrefix))
	if err != nil {
		t.Fatal(err)
	}
	sealed[len(sealed)/2] ^= 1 // one bit of the ciphertext
	tampered := grantPrefix + base64.RawURLEncoding.EncodeToString(sealed)
	for _, tt := range []struct {
		name, stdin string
		vars        map[string]string
		want        string
	}{
		{"another fleet's key of the same id", line, map[string]string{envFleetKey: wrongKey}, "does not open with this fleet key"},
		{"a key id this machine lacks", line, map[string]string{envFleetKey: otherID}, "fleet key this machine does not have"},
		{"a changed line", tampered, vars, "does not open with this fleet key"},
		{"no key", line, map[string]string{envFleetKeyFile: "", envFleetKey: ""}, "authkeeper fleet keygen"},
	} {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			code, out, errOut := runCLIWith(t, tt.stdin, tt.vars, "import")
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("import: exit %d, stderr %q; want a failure saying %q", code, errOut, tt.want)
			}
			nothingOnB(t)
			assertNoSecrets(t, "import output", out+errOut, secrets...)
			// What came on stdin exists nowhere else: it is kept, sealed, for another try.
			kept := regexpKept.FindStringSubmatch(errOut)
			if kept == nil {
				t.Fatalf("stderr does not say where the grant was kept: %q", errOut)
			}
			fi, err := os.Stat(kept[1])
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("kept grant %s: %v, mode %v; want a 0600 file", kept[1], err, fi)
			}
			if data, _ := os.ReadFile(kept[1]); strings.TrimSpace(string(data)) != strings.TrimSpace(tt.stdin) {
				t.Error("the kept file does not hold the line read")
			}
		})
	}

	code, out, errOut := runCLIWith(t, line, vars, "import")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if want := "imported bench (" + a.srv.URL + ")"; !strings.HasPrefix(out, want) || !strings.Contains(out, "token valid until") {
		t.Errorf("import printed %q, want %q… token valid until …", out, want)
	}
	assertNoSecrets(t, "import output", out+errOut, secrets...)
	code, _, errOut = runCLIWith(t, line, vars, "import")
	if code == 0 || !strings.Contains(errOut, "bench already has credentials here; --replace to overwrite") {
		t.Errorf("a second import: exit %d, stderr %q; want a refusal naming --replace", code, errOut)
	}

	// B refreshes on its own schedule (6-s tokens: within seconds) from the refresh token A last
	// rotated, and serves a tool call with the result.
	waitEventFor(t, ch, engine.EventRefreshed, "bench", 15*time.Second)
	c := mcp.NewClient(&mcp.Implementation{Name: "transfer-test", Version: "1"}, nil)
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	cs, err := c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: b.ProxyEndpoint("bench")}, nil)
	if err != nil {
		t.Fatalf("connect through B's proxy: %v", err)
	}
	defer cs.Close()
	if got, err := proxyEcho(cctx, cs, "moved"); err != nil || got != "moved" {
		t.Fatalf("echo through B's proxy: %q, %v", got, err)
	}
	if got := a.as.TokenRequests(t, "refresh_token"); got <= refreshesAtA {
		t.Errorf("the AS saw %d refreshes, %d before the import: B did not refresh", got, refreshesAtA)
	}
	events := a.as.Events(t)
	if n := countPrefix(events, "refresh_token.reused") + countPrefix(events, "grant.revoked"); n != 0 {
		t.Errorf("a refresh token was replayed (%d reuse/revocation events): %v", n, events)
	}
	if _, err := a.eng.Server("bench"); !errors.Is(err, engine.ErrUnknownServer) {
		t.Errorf("A has the server again: %v", err)
	}
}
