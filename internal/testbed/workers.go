package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// WorkerVersion selects the release of Cloudflare's @cloudflare/workers-oauth-provider a WorkerAS is
// built on. Both are installed side by side in internal/testbed/workers under npm aliases.
type WorkerVersion string

const (
	// WorkerCurrent is the current release (npm alias oauth-provider-current, 1.2.3): a loopback
	// redirect URI matches on any port (RFC 8252 §7.3, since 0.2.4), RFC 9728 metadata and the
	// resource_metadata challenge come from the library, and RFC 9207 iss is on the callback.
	WorkerCurrent WorkerVersion = "current"
	// Worker023 is 0.2.3 (npm alias oauth-provider-0.2.3), the last release that compared redirect
	// URIs exactly, port included, as servers built on it (Sentry's among them) did. It has no RFC 9728
	// support and no iss on the callback.
	Worker023 WorkerVersion = "0.2.3"
)

// WorkerAccessTokenTTL is the lifetime of the worker's access tokens: the library's minimum
// (Cloudflare KV's shortest expiration; 1.x refuses less), so clients refresh every minute.
const WorkerAccessTokenTTL = 60 * time.Second

// WorkerScope is the one scope the worker offers, advertised in its metadata and challenges.
const WorkerScope = "mcp"

// WorkerOptions configures NewWorkerAS. The zero value runs the current library with protected
// resource metadata.
type WorkerOptions struct {
	// Version of the library. Default WorkerCurrent.
	Version WorkerVersion
	// NoResourceMetadata, for Worker023 only, serves that library as it was deployed in the
	// 2025-03-26 era: no RFC 9728 document and a 401 challenge without resource_metadata, so a client
	// has to find the authorization server metadata at the MCP server's own origin. Default false:
	// the worker adds the document and the challenge parameter that the current library serves itself.
	NoResourceMetadata bool
}

// WorkerAS is Cloudflare's workers-oauth-provider running locally under workerd (`wrangler dev
// --local`, see workers/src/app.mjs), acting as authorization server and MCP server on one origin:
//
//   - dynamic client registration (RFC 7591), authorization code with PKCE, RFC 8707 resource; one
//     scope, WorkerScope; Client ID Metadata Documents off (as the library ships), so clients register;
//   - /authorize approves every valid request at once for the user "bench-user" with the scopes
//     asked for, and answers 400 (no redirect) to one the library refuses to parse;
//   - access tokens live WorkerAccessTokenTTL; refresh tokens (30 days) rotate on every refresh, and
//     the previous one stays usable until the new one is used (see workers_test.go for the details);
//   - RFC 7009 revocation at the token endpoint: an access token alone, or a refresh token with its
//     whole grant;
//   - the current library only: a replayed code revokes its grant, and approving the same client
//     again for the same user and resource revokes the client's earlier grant at once;
//   - /mcp: the official TypeScript SDK's web-standard Streamable HTTP transport, stateless, answering
//     in SSE, with the tool echo {text} → text; requests without a valid token get 401 with a Bearer
//     challenge.
//
// Its KV storage lives in a per-test directory, so no two workers share state. It is stopped by
// t.Cleanup, and its output is logged if the test failed. Safe for concurrent use.
//
// Starting one costs about 3.5 s of CPU (node loading wrangler, esbuild bundling the worker, workerd
// instantiating it): a few seconds on an idle machine, 6–25 s on a loaded one. Share one per test.
type WorkerAS struct {
	// Version is the library release it runs, as asked for.
	Version WorkerVersion
	// LibraryVersion is that release's exact npm version, e.g. "1.2.3".
	LibraryVersion string
	// Issuer is the authorization server's issuer and the worker's origin, e.g. http://127.0.0.1:41234.
	Issuer string
	// MCPURL is the MCP endpoint, Issuer + "/mcp": the protected resource, the RFC 8707 resource
	// tokens are issued for.
	MCPURL string
	// ResourceMetadataURL is the RFC 9728 document for MCPURL, as named in 401 challenges:
	// Issuer + "/.well-known/oauth-protected-resource/mcp" (the root form is not served). Empty with
	// NoResourceMetadata.
	ResourceMetadataURL string
	// MetadataURL is the RFC 8414 authorization server metadata.
	MetadataURL string
	// Endpoints, as the metadata names them. RevocationURL is the token endpoint: the library tells
	// a revocation from a token request by the absence of grant_type.
	AuthURL, TokenURL, RegistrationURL, RevocationURL string
	// StartupTime is how long `wrangler dev` took from launch until the metadata answered.
	StartupTime time.Duration

	proc *Process
}

// NewWorkerAS starts a worker on a free loopback port and waits until its metadata answers (up to a
// minute: wrangler bundles the worker, then starts workerd).
func NewWorkerAS(t testing.TB, opts WorkerOptions) *WorkerAS {
	t.Helper()
	if opts.Version == "" {
		opts.Version = WorkerCurrent
	}
	entry := map[WorkerVersion]string{WorkerCurrent: "current.mjs", Worker023: "v0.2.3.mjs"}[opts.Version]
	alias := map[WorkerVersion]string{WorkerCurrent: "oauth-provider-current", Worker023: "oauth-provider-0.2.3"}[opts.Version]
	if entry == "" {
		t.Fatalf("WorkerOptions.Version %q: want %q or %q", opts.Version, WorkerCurrent, Worker023)
	}
	if opts.NoResourceMetadata && opts.Version != Worker023 {
		t.Fatal("WorkerOptions.NoResourceMetadata needs Version Worker023: the current library always serves the metadata")
	}
	dir := WorkersDir(t)
	port, inspector := FreePort(t), FreePort(t)
	w := &WorkerAS{Version: opts.Version, LibraryVersion: npmVersion(t, filepath.Join(dir, "node_modules", alias)),
		Issuer: fmt.Sprintf("http://127.0.0.1:%d", port)}
	w.MCPURL = w.Issuer + "/mcp"
	if !opts.NoResourceMetadata {
		w.ResourceMetadataURL = w.Issuer + "/.well-known/oauth-protected-resource/mcp"
	}
	w.MetadataURL = w.Issuer + "/.well-known/oauth-authorization-server"
	w.AuthURL, w.TokenURL, w.RegistrationURL = w.Issuer+"/authorize", w.Issuer+"/token", w.Issuer+"/register"
	w.RevocationURL = w.TokenURL

	// The configuration, wrangler's scratch files (.wrangler/) and the KV state all live in a
	// directory of this test's, so the source tree stays clean and runs never share state.
	tmp := TempDir(t)
	vars := map[string]string{"ORIGIN": w.Issuer}
	if opts.NoResourceMetadata {
		vars["BARE"] = "1"
	}
	cfg, err := json.Marshal(map[string]any{
		"name":                "authkeeper-bench-" + map[WorkerVersion]string{WorkerCurrent: "current", Worker023: "v0-2-3"}[opts.Version],
		"main":                filepath.Join(dir, "src", entry),
		"compatibility_date":  "2026-04-01", // within the pinned workerd's range, so wrangler never looks for updates
		"compatibility_flags": []string{"nodejs_compat"},
		"kv_namespaces":       []map[string]string{{"binding": "OAUTH_KV", "id": "bench"}},
		"vars":                vars,
	})
	if err != nil {
		t.Fatalf("worker config: %v", err)
	}
	config := filepath.Join(tmp, "wrangler.json")
	if err := os.WriteFile(config, cfg, 0o600); err != nil {
		t.Fatalf("worker config: %v", err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "node_modules", "wrangler", "bin", "wrangler.js"), "dev", "--local",
		"--config", config, "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--inspector-ip", "127.0.0.1", "--inspector-port", strconv.Itoa(inspector),
		"--persist-to", filepath.Join(tmp, "state"), "--show-interactive-dev-session=false")
	cmd.Dir = tmp
	// No network but loopback: no metrics, no error reports, no update check (it runs with the
	// banner), no download of the request.cf data; wrangler's own files stay in tmp too.
	cmd.Env = append(cmd.Environ(), "WRANGLER_SEND_METRICS=false", "WRANGLER_SEND_ERROR_REPORTS=false",
		"WRANGLER_HIDE_BANNER=true", "CLOUDFLARE_CF_FETCH_ENABLED=false", "WRANGLER_LOG_PATH="+filepath.Join(tmp, "logs"),
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "config"), "NO_COLOR=1", "FORCE_COLOR=0")
	start := time.Now()
	w.proc = StartProcess(t, "worker "+string(opts.Version), cmd)
	w.waitReady(t, time.Minute)
	w.StartupTime = time.Since(start)
	t.Logf("worker %s (workers-oauth-provider %s) ready at %s in %v", w.Version, w.LibraryVersion, w.Issuer, w.StartupTime.Round(time.Millisecond))
	return w
}

// waitReady polls the metadata until it answers 200, failing the test if wrangler exits first.
func (w *WorkerAS) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		// The first request that reaches workerd instantiates the worker, which takes seconds on a
		// busy machine: wait for it rather than abandon it (workerd logs every abandoned request).
		client := &http.Client{Timeout: max(time.Until(deadline), time.Second)}
		resp, err := client.Get(w.MetadataURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s not ready within %v (last: %v); output:\n%s", w.Version, timeout, err, w.proc.Output())
		}
		select {
		case <-w.proc.Done():
			t.Fatalf("worker %s exited (%v) before it was ready; output:\n%s", w.Version, w.proc.ExitErr(), w.proc.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops wrangler and workerd. It is idempotent; t.Cleanup calls it too.
func (w *WorkerAS) Stop() { _ = w.proc.Stop() }

// Output returns what wrangler and the worker have written so far: one line per request, and the
// worker's log (every OAuth error the library answers, with its internal reason).
func (w *WorkerAS) Output() string { return w.proc.Output() }

// WorkersDir returns the absolute path of the worker's npm package (internal/testbed/workers), after
// checking that node is installed and `npm ci` has populated its node_modules.
func WorkersDir(t testing.TB) string {
	t.Helper()
	Need(t, "node")
	dir := benchDir(t, "workers")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "wrangler")); err != nil {
		missing(t, "%s/node_modules is absent (run `make deps`, or `npm ci` there)", dir)
	}
	return dir
}

// npmVersion reads the version of the npm package installed in dir.
func npmVersion(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		missing(t, "%v (run `make deps`)", err)
	}
	var p struct{ Version string }
	if err := json.Unmarshal(b, &p); err != nil || p.Version == "" {
		t.Fatalf("%s/package.json: no version (%v)", dir, err)
	}
	return p.Version
}
