// Command adapter is the client the MCP conformance suite runs for each client scenario: it plays an
// agent that reaches the scenario's server only through authkeeper, and the person who signs in.
//
// The suite runs `adapter SERVER_URL` with MCP_CONFORMANCE_SCENARIO and, for some scenarios,
// MCP_CONFORMANCE_CONTEXT (client id, secret, key…) in the environment. The adapter then
//
//  1. starts `$AUTHKEEPER_BIN serve` with a private HOME and XDG directories, the file credential
//     store, the client metadata URL the suite expects (--client-metadata-url), and itself first on
//     PATH as `xdg-open` — the browser stand-in (browser.go);
//  2. runs `authkeeper add SERVER_URL` with what the scenario gives its client, the way a person
//     would (see engine.add): a client id and secret, a private key file, a machine identity, an
//     identity provider and the user's ID token;
//  3. connects through authkeeper's proxy with the official Go SDK client, lists the tools and calls each
//     one; when authkeeper answers that a sign-in is needed, it runs `authkeeper login`, as a person
//     would, and tries again (at most maxSignIns times in all).
//
// The suite's --suite mode starts every scenario at once. With AKCONF_LOCK set to a file, the clients
// take turns on it (flock), so that a timing check — sse-retry measures the 500 ms reconnection delay
// with 200 ms of tolerance — is not taken on a machine busy starting 25 other authkeepers. A client
// gives up after clientDeadline, so a stuck one cannot starve those queued behind it.
//
// Exit status 0 means every step worked; the suite's checks, not the status, decide a scenario.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// clientDeadline bounds one scenario's client, its turn excluded.
const clientDeadline = 45 * time.Second

// completedLine is the adapter's last line on stdout when every step worked (see run). The test in
// the parent package looks for this exact text.
const completedLine = "adapter: completed: added the server, listed its tools and called each one"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args)
	stop()
	os.Exit(code)
}

// run dispatches on how the binary was invoked: as xdg-open (the browser), as the browser's detached
// visit, or as the suite's client.
func run(ctx context.Context, args []string) int {
	switch {
	case filepath.Base(args[0]) == "xdg-open" && len(args) == 2:
		return openURL(args[1])
	case len(args) == 3 && args[1] == visitFlag:
		return visit(ctx, args[2])
	case len(args) == 2:
		if err := runScenario(ctx, args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "adapter:", err)
			return 1
		}
		// The suite's --suite mode ignores a client's exit status; this line lets the test tell a client
		// that used the server to the end from one that failed or was killed.
		fmt.Println(completedLine)
		return 0
	}
	fmt.Fprintln(os.Stderr, "usage: adapter SERVER_URL (run by the conformance suite)")
	return 2
}

// scenarioContext is MCP_CONFORMANCE_CONTEXT: what a scenario gives its client besides the URL.
// Fields the adapter does not know are reported, not silently dropped.
type scenarioContext struct {
	// ClientID and ClientSecret are a client registered by hand at the server's authorization server.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// PrivateKeyPEM is that client's private key (private_key_jwt); SigningAlgorithm follows from the
	// key's type in authkeeper (EC P-256: ES256), so it is only checked.
	PrivateKeyPEM    string `json:"private_key_pem"`
	SigningAlgorithm string `json:"signing_algorithm"`
	// The user's enterprise identity provider (cross-app access): its token endpoint, authkeeper's
	// client id there and the user's ID token. IdPIssuer is not needed: the token endpoint is given.
	IdPTokenEndpoint string `json:"idp_token_endpoint"`
	IdPClientID      string `json:"idp_client_id"`
	IdPIDToken       string `json:"idp_id_token"`
	IdPIssuer        string `json:"idp_issuer"`
	rest             []string
}

// knownContext are the context fields scenarioContext reads ("name" is the scenario's).
var knownContext = map[string]bool{"name": true, "client_id": true, "client_secret": true, "private_key_pem": true,
	"signing_algorithm": true, "idp_token_endpoint": true, "idp_client_id": true, "idp_id_token": true, "idp_issuer": true}

func parseContext(raw string) (scenarioContext, error) {
	var c scenarioContext
	if raw == "" {
		return c, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		return c, fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return c, fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
	}
	for k := range all {
		if !knownContext[k] {
			c.rest = append(c.rest, k)
		}
	}
	return c, nil
}

// runScenario signs authkeeper in to serverURL and uses the server through the proxy.
func runScenario(ctx context.Context, serverURL string) (err error) {
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	sc, err := parseContext(os.Getenv("MCP_CONFORMANCE_CONTEXT"))
	if err != nil {
		return err
	}
	if lock := os.Getenv("AKCONF_LOCK"); lock != "" {
		release, err := takeTurn(lock)
		if err != nil {
			return err
		}
		defer release()
	}
	ctx, cancel := context.WithTimeout(ctx, clientDeadline)
	defer cancel()
	if len(sc.rest) > 0 {
		logf("scenario %s: context fields the adapter does not know, not passed to authkeeper: %v", scenario, sc.rest)
	}
	bin := os.Getenv("AUTHKEEPER_BIN")
	if bin == "" {
		return errors.New("AUTHKEEPER_BIN is not set")
	}
	dir, err := os.MkdirTemp("/tmp", "akconf") // short: it holds the control socket
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ak, err := startEngine(ctx, bin, dir)
	if err != nil {
		return err
	}
	defer func() {
		ak.stop()
		// The suite keeps the client's stderr: the engine's and the browser's logs explain a failure.
		dumpFile("authkeeper serve", ak.serveLog)
		dumpFile("browser", ak.browserLog)
	}()
	if err := ak.add(ctx, serverURL, scenario, sc); err != nil {
		return err
	}
	return useServer(ctx, ak.proxyURL(), ak.login)
}

// takeTurn waits for the exclusive lock on path; release gives it up. The lock also ends with the
// process, however it ends.
func takeTurn(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	logf("waited %v for this client's turn", time.Since(start).Round(time.Millisecond))
	return func() { f.Close() }, nil
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "adapter: "+format+"\n", args...) }

func dumpFile(label, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(os.Stderr, "--- %s ---\n", label)
	_, _ = io.Copy(os.Stderr, io.LimitReader(f, 256<<10))
}
