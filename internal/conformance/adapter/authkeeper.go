package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// serverName is the name the scenario's server gets in authkeeper.
const serverName = "conf"

// clientMetadataURL is the client id the suite expects from a client that uses a Client ID Metadata
// Document (auth/basic-cimd checks the authorization request's client_id against it). The suite's
// authorization server never fetches it.
const clientMetadataURL = "https://conformance-test.local/client-metadata.json"

// engine is one `authkeeper serve` with private directories, and the commands a person runs against it.
type engine struct {
	bin        string
	env        []string // the environment of every authkeeper process
	addr       string   // the proxy's host:port
	configDir  string
	serveLog   string
	browserLog string
	dir        string
	cmd        *exec.Cmd
	exited     chan struct{}
	// loginEnv is what a person gives `authkeeper login` besides the name: for a cross-app access
	// server, the ID token again (authkeeper keeps none).
	loginEnv []string
}

// startEngine starts `authkeeper serve` in dir and waits until its proxy accepts connections.
func startEngine(ctx context.Context, bin, dir string) (*engine, error) {
	home := filepath.Join(dir, "home")
	cfg, state, rt, path := filepath.Join(home, ".config"), filepath.Join(home, ".local", "state"),
		filepath.Join(dir, "run"), filepath.Join(dir, "bin")
	for _, d := range []string{filepath.Join(cfg, "authkeeper"), state, rt, path} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// pkg/browser runs xdg-open from PATH: this binary, by that name, is the browser.
	if err := os.Symlink(self, filepath.Join(path, "xdg-open")); err != nil {
		return nil, err
	}
	// The settings a user would choose: no desktop notifications (there is no desktop). The client
	// metadata URL the suite's CIMD scenarios expect is given to serve (--client-metadata-url).
	settings := `{"servers": [], "prefs": {"store": "file", "notifications": false}}`
	if err := os.WriteFile(filepath.Join(cfg, "authkeeper", "config.json"), []byte(settings), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	e := &engine{bin: bin, dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port), configDir: filepath.Join(cfg, "authkeeper"),
		serveLog: filepath.Join(dir, "serve.log"), browserLog: filepath.Join(dir, "browser.log"), exited: make(chan struct{})}
	e.env = []string{"HOME=" + home, "PATH=" + path + string(os.PathListSeparator) + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + cfg, "XDG_STATE_HOME=" + state, "XDG_RUNTIME_DIR=" + rt, "AUTHKEEPER_STORE=file",
		browserLogEnv + "=" + e.browserLog}
	log, err := os.Create(e.serveLog)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	e.cmd = exec.Command(bin, "serve", "--proxy-addr", e.addr, "--store", "file", "--client-metadata-url", clientMetadataURL)
	e.cmd.Env, e.cmd.Stdout, e.cmd.Stderr = e.env, log, log
	dieWithParent(e.cmd)
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start authkeeper serve: %w", err)
	}
	go func() { _ = e.cmd.Wait(); close(e.exited) }()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", e.addr); err == nil {
			c.Close()
			return e, nil
		}
		select {
		case <-e.exited:
			return nil, fmt.Errorf("authkeeper serve exited before its proxy listened (log: %s)", e.serveLog)
		case <-ctx.Done():
			e.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, fmt.Errorf("authkeeper serve: no proxy on %s after 20s", e.addr)
		}
	}
}

// stop ends the engine: SIGTERM, then SIGKILL after five seconds.
func (e *engine) stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

// add runs `authkeeper add URL` with what the scenario gives a client, as its user would give it:
// a client id registered by hand, its secret through the environment and its private key in a 0600
// file (authkeeper never takes a secret on the command line); for cross-app access the identity
// provider's token endpoint and client id, and the user's ID token through the environment.
//
// A machine identity is the one thing the context does not say: auth/client-credentials-basic gives
// exactly what auth/pre-registration gives (a client id and secret), and only the grant differs. A
// person setting up a service principal knows it is one, so the scenario's name stands for that
// knowledge here, and for nothing else.
func (e *engine) add(ctx context.Context, serverURL, scenario string, sc scenarioContext) error {
	args := []string{"add", serverURL, "--name", serverName}
	var env []string
	if sc.ClientID != "" {
		args = append(args, "--client-id", sc.ClientID)
	}
	if sc.ClientSecret != "" {
		env = append(env, "AUTHKEEPER_CLIENT_SECRET="+sc.ClientSecret)
	}
	if sc.PrivateKeyPEM != "" {
		if sc.SigningAlgorithm != "" && sc.SigningAlgorithm != "ES256" && sc.SigningAlgorithm != "RS256" {
			logf("signing algorithm %s: authkeeper signs with ES256 (EC P-256) or RS256 (RSA) by the key's type", sc.SigningAlgorithm)
		}
		keyFile := filepath.Join(e.dir, "client-key.pem")
		if err := os.WriteFile(keyFile, []byte(sc.PrivateKeyPEM), 0o600); err != nil {
			return err
		}
		args = append(args, "--client-key-file", keyFile)
	}
	if strings.HasPrefix(scenario, "auth/client-credentials-") {
		args = append(args, "--client-credentials")
	}
	if sc.IdPIDToken != "" {
		args = append(args, "--cross-app", "--idp-token-endpoint", sc.IdPTokenEndpoint, "--idp-client-id", sc.IdPClientID)
		e.loginEnv = []string{"AUTHKEEPER_IDP_ID_TOKEN=" + sc.IdPIDToken}
		env = append(env, e.loginEnv...)
	}
	return e.command(ctx, env, args...)
}

// login runs `authkeeper login NAME`: what a person does when authkeeper says a sign-in is needed.
func (e *engine) login(ctx context.Context) error {
	return e.command(ctx, e.loginEnv, "login", serverName)
}

func (e *engine) command(ctx context.Context, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(append([]string(nil), e.env...), env...)
	out, err := cmd.CombinedOutput()
	logf("authkeeper %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("authkeeper %s: %w", args[0], err)
	}
	return nil
}

// proxyURL is the scenario server's address on authkeeper's proxy, with the access key in the path.
func (e *engine) proxyURL() string {
	key, err := os.ReadFile(filepath.Join(e.configDir, "proxy.key"))
	if err != nil {
		logf("proxy key: %v", err)
	}
	return fmt.Sprintf("http://%s/%s/mcp/%s", e.addr, strings.TrimSpace(string(key)), serverName)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("listener address %v is not TCP", l.Addr())
	}
	return a.Port, nil
}
