//go:build linux

package wine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestZipLayoutWritesTheConsoleExeIntoStdioEntries lays the two exes out as the Windows zip does
// (authkeeper.exe, the tray, and authkeeper-windows-amd64.exe, the headless console build, in one
// folder) and runs `clients --write claude-desktop` from each under Wine: Claude Desktop's bridge entry
// runs the console exe either way, as `clients` found it next to the tray exe printing the same version.
func TestZipLayoutWritesTheConsoleExeIntoStdioEntries(t *testing.T) {
	b := newBench(t)
	hdir := os.Getenv("AUTHKEEPER_HEADLESS_DIR")
	if hdir == "" {
		missing(t, "AUTHKEEPER_HEADLESS_DIR is not set (`make test` builds the headless windows/amd64 exe and sets it)")
	}
	folder := t.TempDir()
	tray, console := filepath.Join(folder, "authkeeper.exe"), filepath.Join(folder, "authkeeper-windows-amd64.exe")
	testbed.CopyFile(t, b.artefact(t, "authkeeper.exe"), tray)
	testbed.CopyFile(t, filepath.Join(hdir, "authkeeper-windows-amd64.exe"), console)
	for _, exe := range []string{tray, console} {
		t.Run(filepath.Base(exe), func(t *testing.T) {
			appData := t.TempDir()
			conf := filepath.Join(appData, "authkeeper")
			if err := os.MkdirAll(conf, 0o700); err != nil {
				t.Fatal(err)
			}
			settings := `{"servers":[{"name":"bench","url":"https://mcp.example.com/mcp"}],"prefs":{"store":"file"}}`
			if err := os.WriteFile(filepath.Join(conf, "config.json"), []byte(settings), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := b.exeCommand(t, exe, appData, nil, "clients", "--write", "claude-desktop", "bench").CombinedOutput()
			if err != nil {
				t.Fatalf("clients --write: %v\n%s", err, out)
			}
			cmd, args := e2e.BridgeEntry(t, filepath.Join(appData, "Claude", "claude_desktop_config.json"), "bench")
			if !strings.EqualFold(cmd, windowsPath(console)) || strings.Join(args, " ") != "bridge bench" {
				t.Errorf("the entry runs %q %q, want %q [bridge bench]; clients printed:\n%s", cmd, args, windowsPath(console), out)
			}
		})
	}
}
