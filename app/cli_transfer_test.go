package app

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/fleet"
	"github.com/authkeeper/authkeeper/keychain"
)

// `authkeeper export`, `import` and `fleet keygen` in process, with no peers: a static-token server
// in the file store. Where the sealed line may go (a new 0600 file, a pipe, never a terminal), that a
// failed write moves nothing, and that both commands work with no engine running. The move of a real
// rotating grant is in peers_transfer_test.go.

func TestFleetKeygenPrintsOneKeyLineThatLoadKeysAccepts(t *testing.T) {
	var lines []string
	for _, tt := range []struct {
		args []string
		id   string
	}{{nil, "k1"}, {[]string{"k2026-05"}, "k2026-05"}, {nil, "k1"}} {
		code, out, errOut := runHelp(t, append([]string{"fleet", "keygen"}, tt.args...)...)
		if code != 0 {
			t.Fatalf("fleet keygen %v: exit %d, %s", tt.args, code, errOut)
		}
		if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, tt.id+":") {
			t.Fatalf("fleet keygen %v printed %d lines, want one %s:… line", tt.args, strings.Count(out, "\n"), tt.id)
		}
		if !strings.Contains(errOut, "chmod 600") || !strings.Contains(errOut, "out of band") {
			t.Errorf("stderr %q does not say how to keep the key", errOut)
		}
		line := strings.TrimSpace(out)
		k, err := fleet.LoadKeys("", line)
		if err != nil || k.CurrentID() != tt.id {
			t.Fatalf("LoadKeys of the printed line: %v", err)
		}
		path := filepath.Join(t.TempDir(), "fleet.key")
		if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := fleet.LoadKeys(path, ""); err != nil {
			t.Errorf("LoadKeys of a file holding the output: %v", err)
		}
		lines = append(lines, line)
	}
	if lines[0] == lines[2] {
		t.Error("two runs printed the same key")
	}
	if code, _, errOut := runHelp(t, "fleet", "keygen", "bad id!"); code == 0 {
		t.Errorf("fleet keygen with an invalid id succeeded: %s", errOut)
	}
}

// errWriter is a stdout whose reader went away.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestExportWritesANewPrivateFileOrNothingAndBothWorkWithoutARunningEngine(t *testing.T) {
	paths := privateHome(t)
	conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := keychain.DefaultSettings()
	s.Prefs.Store = "file" // what the engine a command starts uses
	if err := conf.Save(s); err != nil {
		t.Fatal(err)
	}
	eng := startEngine(t, engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0"})
	const token, url = "static-api-key-0123456789", "http://127.0.0.1:9/mcp"
	expiry := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	ctx := context.Background()
	if err := eng.Add(ctx, engine.AddRequest{Name: "keyed", URL: url, StaticToken: token, StaticExpiry: expiry}); err != nil {
		t.Fatal(err)
	}
	_, vars := fleetKeyVars(t, "k1")
	stillHere := func(t *testing.T, what string) {
		t.Helper()
		if got, err := eng.Token(ctx, "keyed"); err != nil || got != token {
			t.Errorf("after %s the server serves its token: %t, %v", what, got == token, err)
		}
	}
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, tt := range []struct {
		name   string
		stdout io.Writer // nil: a buffer
		vars   map[string]string
		args   []string
		want   string
	}{
		{"stdout is a terminal", devNull, vars, nil, "stdout is a terminal"},
		{"the file exists", nil, vars, []string{"--out", existing}, "exists"},
		{"the reader went away", errWriter{}, vars, nil, "nothing moved"},
		{"no fleet key", nil, map[string]string{envFleetKeyFile: "", envFleetKey: ""}, nil, "authkeeper fleet keygen > fleet.key"},
		{"an unknown server", nil, vars, []string{"--out", filepath.Join(dir, "x")}, "no such server"},
	} {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			args := append([]string{"authkeeper", "export", "keyed"}, tt.args...)
			if tt.want == "no such server" {
				args[2] = "nope"
			}
			var errb strings.Builder
			e := env{stdout: &strings.Builder{}, stderr: &errb, getenv: func(k string) string {
				if v, ok := tt.vars[k]; ok {
					return v
				}
				return os.Getenv(k)
			}}
			if tt.stdout != nil {
				e.stdout = tt.stdout
			}
			if code := run(ctx, args, e); code == 0 || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("export: exit %d, stderr %q; want a failure saying %q", code, errb.String(), tt.want)
			}
			assertNoSecrets(t, "export's stderr", errb.String(), token)
			stillHere(t, tt.name)
		})
	}
	if data, _ := os.ReadFile(existing); string(data) != "keep me" {
		t.Error("export overwrote an existing file")
	}

	out := filepath.Join(dir, "grant.txt")
	code, stdout, errOut := runCLIWith(t, "", vars, "export", "keyed", "--out", out)
	if code != 0 || stdout != "" || !strings.Contains(errOut, "moved keyed") {
		t.Fatalf("export --out: exit %d, stdout %q, stderr %q", code, stdout, errOut)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export --out file: %v, %v; want mode 0600", err, fi)
	}
	data, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(data), grantPrefix) || strings.Count(string(data), "\n") != 1 {
		t.Errorf("export --out wrote %d lines, want one grant line", strings.Count(string(data), "\n"))
	}
	assertNoSecrets(t, "the exported file", string(data), token)
	if _, err := eng.Server("keyed"); !errors.Is(err, engine.ErrUnknownServer) {
		t.Errorf("the exporting engine still has the server: %v", err)
	}
	store, err := keychain.NewFileStore(keychain.FileConfig{Dir: paths.ConfigDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get("keyed"); !errors.Is(err, keychain.ErrNotFound) {
		t.Errorf("the exporting engine kept the record: %v", err)
	}

	// With no engine running, each command starts one for as long as it runs (as add does).
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	code, stdout, errOut = runCLIWith(t, "", vars, "import", out)
	if code != 0 {
		t.Fatalf("import FILE with no engine running: exit %d\n%s%s", code, stdout, errOut)
	}
	if want := "imported keyed (" + url + "), from "; !strings.HasPrefix(stdout, want) ||
		!strings.Contains(stdout, "token valid until "+expiry.Local().Format(time.DateTime)) {
		t.Errorf("import printed %q, want %q… token valid until %s", stdout, want, expiry.Local().Format(time.DateTime))
	}
	if rec, err := store.Get("keyed"); err != nil || rec.AccessToken != token {
		t.Errorf("import stored the token: %v", err)
	}
	out2 := filepath.Join(dir, "again.txt")
	if code, _, errOut := runCLIWith(t, "", vars, "export", "keyed", "--out", out2); code != 0 {
		t.Fatalf("export with no engine running: exit %d\n%s", code, errOut)
	}
	if _, err := store.Get("keyed"); !errors.Is(err, keychain.ErrNotFound) {
		t.Errorf("export with no engine running kept the record: %v", err)
	}
	if s, _ := conf.Load(); len(s.Servers) != 0 {
		t.Errorf("export with no engine running kept the server: %+v", s.Servers)
	}
	if _, err := os.Stat(filepath.Join(paths.StateDir, "imports")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an import from a file kept a copy: %v", err)
	}
}
