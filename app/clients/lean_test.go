package clients

import (
	"slices"
	"testing"
)

// TestWritesBridgeOnlyForStdioClients: Claude Desktop's entries run the bridge; no other target's do.
func TestWritesBridgeOnlyForStdioClients(t *testing.T) {
	for _, tg := range Targets {
		t.Run(tg.ID, func(t *testing.T) {
			if got, want := tg.WritesBridge(), tg.ID == "claude-desktop"; got != want {
				t.Errorf("WritesBridge = %v, want %v", got, want)
			}
		})
	}
}

func TestLeanNamesPerTarget(t *testing.T) {
	for _, tc := range []struct {
		goos, goarch string
		want         []string
	}{
		{"linux", "amd64", []string{"authkeeper-headless", "authkeeper-linux-amd64"}},
		{"darwin", "arm64", []string{"authkeeper-headless", "authkeeper-darwin-arm64"}},
		{"windows", "amd64", []string{"authkeeper-headless.exe", "authkeeper-windows-amd64.exe"}},
	} {
		t.Run(tc.goos+"/"+tc.goarch, func(t *testing.T) {
			if got := LeanNames(tc.goos, tc.goarch); !slices.Equal(got, tc.want) {
				t.Errorf("LeanNames = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestIsAuthkeeperKnowsEveryBinaryName: the audit recognises an entry by its command's base name —
// the tray binary, the headless build under either name, on this OS or written on Windows — and no
// other program whose name merely starts with authkeeper.
func TestIsAuthkeeperKnowsEveryBinaryName(t *testing.T) {
	for cmd, want := range map[string]bool{
		"authkeeper":                                       true,
		"/usr/bin/authkeeper":                              true,
		"/usr/bin/authkeeper-headless":                     true,
		"/opt/ak/authkeeper-linux-amd64":                   true,
		"/opt/ak/authkeeper-darwin-arm64":                  true,
		`C:\Tools\authkeeper\authkeeper.exe`:               true,
		`C:\Tools\authkeeper\AUTHKEEPER-WINDOWS-AMD64.EXE`: true,
		`C:\Tools\authkeeper\authkeeper-headless.exe`:      true,
		"/usr/bin/authkeeper-helper":                       false,
		"/usr/bin/authkeeper-linux":                        false,
		"/usr/bin/authkeeper-linux-amd64-old":              false,
		"/usr/bin/myauthkeeper":                            false,
		"npx":                                              false,
		"":                                                 false,
	} {
		t.Run(cmd, func(t *testing.T) {
			if got := isAuthkeeper(cmd); got != want {
				t.Errorf("isAuthkeeper(%q) = %v, want %v", cmd, got, want)
			}
		})
	}
}
