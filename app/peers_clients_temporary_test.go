package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
)

// TestClientsKeepTheStableAddressWhileATemporaryOwnerRuns: a temporary owner (what a bridge, the
// headers helper or a busy run starts when no app runs) serves its proxy on a port of its own until
// the app starts; `clients` must not write that port into agents' configs: it keeps the settings'
// stable address and says why.
func TestClientsKeepTheStableAddressWhileATemporaryOwnerRuns(t *testing.T) {
	home, _ := clientsHome(t)
	rt := shortRuntimeDir(t)
	t.Setenv("XDG_RUNTIME_DIR", rt)
	paths, err := engine.DefaultPaths(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	eng := startEngine(t, engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", StoreKind: "file", Temporary: true})
	temp := eng.ProxyURL()
	if strings.Contains(temp, ":47615") {
		t.Fatalf("the temporary owner took the stable port: %s", temp)
	}

	code, stdout, stderr := runCLI(t, "clients", "bench")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "# Proxy: http://127.0.0.1:47615 (a temporary authkeeper") || !strings.Contains(stdout, `"url": "http://127.0.0.1:47615/mcp/bench"`) {
		t.Errorf("want the stable address and why:\n%s", stdout)
	}
	if code, stdout, stderr := runCLI(t, "clients", "--write", "cursor", "bench"); code != 0 || !strings.Contains(stdout, "a temporary authkeeper") {
		t.Fatalf("write: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	data, _ := os.ReadFile(filepath.Join(home, ".cursor", "mcp.json"))
	if strings.Contains(string(data), temp) || !strings.Contains(string(data), "http://127.0.0.1:47615/mcp/bench") {
		t.Errorf("cursor's file names the temporary port %s, not the stable one:\n%s", temp, data)
	}
}
