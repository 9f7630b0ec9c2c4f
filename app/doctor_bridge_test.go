package app

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestDoctorAdvisesBridgeEntriesThatShouldRunTheHeadlessBuild pins the client check's advice on
// bridge entries, for three installs: the tray build with the headless build next to it (as the .deb
// lays them out), the same seen from the headless build, and a headless build installed by hand as
// authkeeper next to its download. An entry that runs the tray binary while the headless build lies
// next to it is a warning whose fix is `clients --write` for a stdio client's entry named after its
// server, else the command to put in; so is one that runs a headless build of another version; a bare
// command is looked up on PATH. The binaries are fakeBuilds (the real ones: the .deb test).
func TestDoctorAdvisesBridgeEntriesThatShouldRunTheHeadlessBuild(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fakes are built without .exe")
	}
	fakes := fakeBuilds(t)
	usr := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(usr, 0o755); err != nil {
		t.Fatal(err)
	}
	tray, lean := filepath.Join(usr, "authkeeper"), filepath.Join(usr, "authkeeper-headless")
	testbed.CopyFile(t, fakes["tray"], tray)
	testbed.CopyFile(t, fakes["same"], lean)
	old := filepath.Join(t.TempDir(), "authkeeper-headless")
	testbed.CopyFile(t, fakes["older"], old)
	server := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(server, 0o755); err != nil {
		t.Fatal(err)
	}
	handInstalled := filepath.Join(server, "authkeeper")
	testbed.CopyFile(t, fakes["same"], handInstalled)
	testbed.CopyFile(t, fakes["same"], filepath.Join(server, clients.LeanNames(runtime.GOOS, runtime.GOARCH)[1]))
	t.Setenv("PATH", usr+string(os.PathListSeparator)+os.Getenv("PATH"))

	const cfg = "/home/u/.config/Claude/claude_desktop_config.json"
	bridge := func(client, entry, cmd string) clients.Finding {
		return clients.Finding{Client: client, Path: cfg, Server: entry, Via: clients.ViaBridge, Proxied: "bench", Command: cmd}
	}
	trayWarn := "bench in " + cfg + " points at authkeeper (authkeeper bridge), but runs the tray binary " + tray +
		": a bridge starts sooner from the headless build installed next to it, " + lean
	type want struct{ status, detail, fix string }
	ok := want{status: "ok"}
	for _, tc := range []struct {
		name      string
		exe       string
		trayBuild bool
		finding   clients.Finding
		want      want
	}{
		{"tray build: entry runs the tray binary", tray, true, bridge("claude-desktop", "bench", tray),
			want{"warn", trayWarn, "authkeeper clients --write claude-desktop bench"}},
		{"tray build: bare authkeeper on PATH", tray, true, bridge("claude-desktop", "bench", "authkeeper"),
			want{"warn", trayWarn, "authkeeper clients --write claude-desktop bench"}},
		{"tray build: entry named otherwise", tray, true, bridge("claude-desktop", "mine", tray),
			want{"warn", strings.Replace(trayWarn, "bench in", "mine in", 1), "change the entry's command to " + lean}},
		{"tray build: a client clients writes no bridge for", tray, true, bridge("cursor", "bench", tray),
			want{"warn", trayWarn, "change the entry's command to " + lean}},
		{"tray build: entry runs the headless build", tray, true, bridge("claude-desktop", "bench", lean), ok},
		{"tray build: entry runs an older headless build", tray, true, bridge("claude-desktop", "bench", old),
			want{"warn", "bench in " + cfg + " points at authkeeper (authkeeper bridge), but runs " + old + `, which is "authkeeper 0.0.1", not authkeeper ` + Version + " as this one",
				"authkeeper clients --write claude-desktop bench"}},
		{"headless build: entry runs the tray binary", lean, false, bridge("claude-desktop", "bench", tray),
			want{"warn", trayWarn, "authkeeper clients --write claude-desktop bench"}},
		{"headless build: entry runs it", lean, false, bridge("claude-desktop", "bench", lean), ok},
		{"installed by hand as authkeeper", handInstalled, false, bridge("claude-desktop", "bench", handInstalled), ok},
		{"an entry through the proxy", tray, true,
			clients.Finding{Client: "claude-code", Path: cfg, Server: "bench", Via: clients.ViaProxy, Proxied: "bench"}, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &doctor{exe: tc.exe, tray: tc.trayBuild, version: Version, paths: engine.Paths{ConfigDir: t.TempDir()},
				settings: keychain.Settings{Servers: []keychain.Server{{Name: "bench", URL: "https://mcp.example.com/mcp"}}},
				dirs:     clients.Dirs{Home: "/nonexistent-home"},
				audit:    func(clients.Dirs, clients.Setup) []clients.Finding { return []clients.Finding{tc.finding} }}
			got := d.checkClients(t.Context())
			if len(got) != 1 {
				t.Fatalf("checkClients = %v, want one line", got)
			}
			r := got[0]
			if string(r.Status) != tc.want.status || (tc.want.detail != "" && r.Detail != tc.want.detail) || r.Fix != tc.want.fix {
				t.Errorf("got  %s %q\n  fix %q\nwant %s %q\n  fix %q", r.Status, r.Detail, r.Fix, tc.want.status, tc.want.detail, tc.want.fix)
			}
		})
	}
}
