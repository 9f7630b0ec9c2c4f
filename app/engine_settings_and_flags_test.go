package app

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// What engine.Config accepts, and which of the settings file and a command-line flag wins. No
// peers: a file store or none.

// TestProxyPortComesFromTheSettingsUnlessAFlagNamesOne: with no address given, the proxy listens on the
// settings' proxy_port (what a tray started at login has to go on), and `authkeeper clients` prints
// that address; an explicit address wins over the setting.
func TestProxyPortComesFromTheSettingsUnlessAFlagNamesOne(t *testing.T) {
	home := t.TempDir()
	rt := shortRuntimeDir(t)
	vars := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config"),
		"XDG_STATE_HOME": filepath.Join(home, ".state"), "XDG_RUNTIME_DIR": rt}
	e := env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return vars[k] }}
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	port := testbed.FreePort(t)
	conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := keychain.DefaultSettings()
	s.Prefs.ProxyPort = port
	s.Servers = []keychain.Server{{Name: "bench", URL: "http://127.0.0.1:1/mcp"}}
	if err := conf.Save(s); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ addr, want string }{
		{"", fmt.Sprintf("http://127.0.0.1:%d", port)},
		{"127.0.0.1:0", ""}, // an explicit address: any port but the setting's
	} {
		eng, err := newEngine(engine.Config{Paths: paths, ProxyAddr: tt.addr, StoreKind: "file"})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := eng.ProxyURL()
		eng.Close()
		if tt.want != "" && got != tt.want {
			t.Errorf("proxy address %q, want the setting's %q", got, tt.want)
		}
		if tt.want == "" && got == fmt.Sprintf("http://127.0.0.1:%d", port) {
			t.Errorf("--proxy-addr %s: the proxy still took the setting's port", tt.addr)
		}
	}
	setup, _, err := loadClientSetup(e, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); setup.ProxyURL != want {
		t.Errorf("clients would point agents at %q, want %q", setup.ProxyURL, want)
	}
}

func TestEngineNewRefusesAClientMetadataURLThatIsNotHTTPS(t *testing.T) {
	_, err := newEngine(engine.Config{Paths: tempPaths(t), OAuth: oauth.Config{ClientMetadataURL: "http://example.com/cimd.json"}})
	if err == nil {
		t.Error("an http client metadata URL was accepted")
	}
}

func TestEngineNewValidatesConfig(t *testing.T) {
	paths := engine.Paths{ConfigDir: "c", StateDir: "s", RuntimeDir: "r"}
	tests := []struct {
		name    string
		cfg     engine.Config
		wantErr string
	}{
		{"missing paths", engine.Config{}, "Paths must name"},
		{"non-loopback proxy", engine.Config{Paths: paths, ProxyAddr: "0.0.0.0:1234"}, "must be a loopback IP"},
		{"hostname proxy", engine.Config{Paths: paths, ProxyAddr: "localhost:1234"}, "must be a loopback IP"},
		{"malformed proxy", engine.Config{Paths: paths, ProxyAddr: "127.0.0.1"}, "proxy address"},
		{"defaults", engine.Config{Paths: paths}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := newEngine(tt.cfg)
			if tt.wantErr == "" {
				// The address is settled at Start, from the settings (see proxyAddrFor).
				if err != nil || e.ProxyAddr() != "" || engine.ProxyAddrFor(keychain.DefaultSettings().Prefs) != engine.DefaultProxyAddr {
					t.Fatalf("engine.New = %v, proxy %q", err, e.ProxyAddr())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("engine.New error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
