package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/e2e"
)

// privateHome points HOME and the XDG directories at private ones for the rest of the test (what the
// command line and a child authkeeper read) and returns the engine paths they give.
func privateHome(t *testing.T) engine.Paths {
	t.Helper()
	home := t.TempDir()
	rt := shortRuntimeDir(t)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, ".local", "state"))
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("CLAUDE_CODE_MCP_SERVER_NAME", "")
	paths, err := engine.DefaultPaths(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// runCLI runs the command line in process with this process's environment and returns the exit code,
// stdout and stderr.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"authkeeper"}, args...), env{stdout: &out, stderr: &errb, getenv: os.Getenv})
	return code, out.String(), errb.String()
}

// assertNoSecrets fails the test if any text contains one of the secrets (tokens, the proxy key).
func assertNoSecrets(t *testing.T, where string, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a secret (%d bytes of it)", where, len(s))
		}
	}
}

// tokenSet collects the tokens a test has seen (see e2e.Secrets).
type tokenSet struct{ e2e.Secrets }

// addFromKeychain records server "bench"'s stored tokens.
func (s *tokenSet) addFromKeychain(t *testing.T) {
	t.Helper()
	rec := proxyRecord(t)
	s.Add(rec.AccessToken, rec.RefreshToken)
}

// runCLIWith runs the command line in process with stdin and extra environment variables.
func runCLIWith(t *testing.T, stdin string, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	code = run(context.Background(), append([]string{"authkeeper"}, args...),
		env{stdout: &out, stderr: &errb, stdin: strings.NewReader(stdin), getenv: getenv})
	return code, out.String(), errb.String()
}
