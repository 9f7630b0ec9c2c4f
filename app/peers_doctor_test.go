package app

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
)

// `authkeeper doctor` against the real peers: one bench (gnome-keyring, oidc-provider, the Go SDK MCP
// server, an engine signed in to it, Claude Code's config written by `clients --write`), broken one
// part at a time in an order that needs no repair: the agent's key, the AS (started again), the owner
// (then a temporary one), the keyring.

// doctorLine returns the line of check (e.g. "keychain", "auth server bench") in out, or fails.
func doctorLine(t *testing.T, out, check string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(ok|warn|FAIL) +` + regexp.QuoteMeta(check) + `: .*$`)
	line := re.FindString(out)
	if line == "" {
		t.Fatalf("no %q line in:\n%s", check, out)
	}
	return line
}

// runDoctor runs `authkeeper doctor` in process and checks it printed nothing on stderr.
func runDoctor(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"doctor"}, args...)...)
	t.Log("\n" + out)
	if errOut != "" {
		t.Errorf("doctor wrote on stderr: %q", errOut)
	}
	return code, out
}

func TestDoctorOnAHealthyBenchThenWithEachPartBroken(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	for _, v := range []string{"CLAUDE_CONFIG_DIR", "COPILOT_HOME", "CODEX_HOME", "AUTHKEEPER_STORE"} {
		t.Setenv(v, "")
	}
	proxyAddr := strings.TrimPrefix(b.eng.ProxyURL(), "http://")
	t.Setenv("AUTHKEEPER_PROXY_ADDR", proxyAddr) // the stable address, as `serve --proxy-addr` would take it
	if code, out, errOut := runCLI(t, "clients", "--write", "claude-code", "bench"); code != 0 {
		t.Fatalf("clients --write: exit %d\n%s%s", code, out, errOut)
	}
	rec := proxyRecord(t)
	secrets := []string{b.eng.ProxyKey(), rec.AccessToken, rec.RefreshToken}

	t.Run("healthy: every check ok, exit 0", func(t *testing.T) {
		code, out := runDoctor(t)
		if code != 0 {
			t.Errorf("exit %d, want 0:\n%s", code, out)
		}
		for _, check := range []string{"keychain", "owner", "proxy port", "server bench", "token bench", "auth server bench", "client claude-code"} {
			if line := doctorLine(t, out, check); !strings.HasPrefix(line, "ok ") {
				t.Errorf("%s: %q, want ok", check, line)
			}
		}
		if strings.Contains(out, "FAIL") || strings.Contains(out, "warn") {
			t.Errorf("a healthy bench got a warning or a failure:\n%s", out)
		}
		if line := doctorLine(t, out, "proxy port"); !strings.Contains(line, proxyAddr+" is the running authkeeper's proxy") {
			t.Errorf("proxy port line %q does not say the port is the engine's", line)
		}
		if line := doctorLine(t, out, "auth server bench"); !strings.Contains(line, b.as.Issuer) {
			t.Errorf("auth server line %q does not name the issuer %s", line, b.as.Issuer)
		}
		assertNoSecrets(t, "doctor output", out, secrets...)

		code, out = runDoctor(t, "--json")
		var doc struct {
			OK     bool          `json:"ok"`
			Checks []checkResult `json:"checks"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || !doc.OK || len(doc.Checks) < 7 {
			t.Errorf("--json: exit %d, %v, %+v", code, err, doc)
		}
	})

	t.Run("an agent's config with a wrong key fails that file", func(t *testing.T) {
		path := filepath.Join(os.Getenv("HOME"), ".cursor", "mcp.json")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		entry := `{"mcpServers":{"bench":{"url":"` + b.eng.ProxyURL() + `/mcp/bench","headers":{"X-Authkeeper-Key":"0123456789abcdef0123456789abcdef-old"}}}}`
		if err := os.WriteFile(path, []byte(entry), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		code, out := runDoctor(t)
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		line := doctorLine(t, out, "client cursor")
		if !strings.HasPrefix(line, "FAIL") || !strings.Contains(line, "stale proxy key") || !strings.Contains(line, "fix: authkeeper clients --write cursor") {
			t.Errorf("cursor line %q, want FAIL naming the stale key and `clients --write cursor`", line)
		}
		if line := doctorLine(t, out, "client claude-code"); !strings.HasPrefix(line, "ok ") {
			t.Errorf("the good file's line %q, want ok", line)
		}
		assertNoSecrets(t, "doctor output", out, secrets...)
	})

	t.Run("a stopped AS fails that server's auth server check", func(t *testing.T) {
		b.as.Stop(t)
		defer b.as.Start(t)
		code, out := runDoctor(t)
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		if line := doctorLine(t, out, "auth server bench"); !strings.HasPrefix(line, "FAIL") || !strings.Contains(line, "fix: ") {
			t.Errorf("auth server line %q, want FAIL with a fix", line)
		}
		for _, check := range []string{"keychain", "owner", "server bench", "token bench"} {
			if line := doctorLine(t, out, check); !strings.HasPrefix(line, "ok ") {
				t.Errorf("%s: %q, want ok: only the AS is down", check, line)
			}
		}
	})

	t.Run("no owner, and the proxy port held by another program", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		b.eng.Close()
		code, out := runDoctor(t, "--proxy-addr", l.Addr().String())
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		if line := doctorLine(t, out, "owner"); !strings.HasPrefix(line, "FAIL") || !strings.Contains(line, "authkeeper serve") {
			t.Errorf("owner line %q, want FAIL saying how to start it", line)
		}
		if line := doctorLine(t, out, "proxy port"); !strings.HasPrefix(line, "FAIL") || !strings.Contains(line, "held by another program") {
			t.Errorf("proxy port line %q, want FAIL: another program holds it", line)
		}
		// Without an owner the token's state comes from the keyring, and the server's from the settings.
		for _, check := range []string{"keychain", "server bench", "token bench", "auth server bench"} {
			if line := doctorLine(t, out, check); !strings.HasPrefix(line, "ok ") {
				t.Errorf("%s: %q, want ok", check, line)
			}
		}
		assertNoSecrets(t, "doctor output", out, secrets...)
	})

	t.Run("a command that took ownership is a warning, exit 0", func(t *testing.T) {
		startEngine(t, engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Temporary: true})
		code, out := runDoctor(t)
		if code != 0 {
			t.Errorf("exit %d, want 0: a warning passes:\n%s", code, out)
		}
		if line := doctorLine(t, out, "owner"); !strings.HasPrefix(line, "warn") || !strings.Contains(line, "took ownership") {
			t.Errorf("owner line %q, want a warning that a command owns", line)
		}
		// The stable port is free for the app (the command's proxy is on a port of its own), and the
		// agent's entry names the stable port.
		for _, check := range []string{"proxy port", "token bench", "client claude-code"} {
			if line := doctorLine(t, out, check); !strings.HasPrefix(line, "ok ") {
				t.Errorf("%s: %q, want ok", check, line)
			}
		}
	})

	t.Run("a locked keyring fails the keychain check with the fix", func(t *testing.T) {
		b.keyring.Lock(t)
		code, out := runDoctor(t)
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		line := doctorLine(t, out, "keychain")
		if !strings.HasPrefix(line, "FAIL") || !strings.Contains(line, "locked") || !strings.Contains(line, "fix: unlock the login keyring") ||
			!strings.Contains(line, "--store file") {
			t.Errorf("keychain line %q, want FAIL: locked, with the fix", line)
		}
		if !b.keyring.Locked(t) {
			t.Errorf("doctor unlocked the keyring (or showed a prompt that did)")
		}
	})
}
