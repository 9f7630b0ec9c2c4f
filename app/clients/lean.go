package clients

import (
	"path/filepath"
	"regexp"
	"strings"
)

// The headless build (`go build -tags headless`: no tray, no GUI toolkit, no cgo) answers every
// command the tray binary does, and a bridge started from it reaches its first answer sooner: it
// loads no shared library and initializes no GUI package (docs/bench-bridge.md measures both). An
// agent starts one bridge per session, so where a package installs the headless build next to the
// tray binary, `authkeeper clients` writes that one into stdio entries.

// LeanNames are the file names the headless build has next to the tray binary for goos/goarch, in
// order of preference: authkeeper-headless (the .deb's /usr/bin/authkeeper-headless), then the name
// `make headless` gives it (authkeeper-windows-amd64.exe in the Windows zip).
func LeanNames(goos, goarch string) []string {
	ext := ""
	if goos == "windows" {
		ext = ".exe"
	}
	return []string{"authkeeper-headless" + ext, "authkeeper-" + goos + "-" + goarch + ext}
}

// authkeeperName matches the base names, without .exe, of authkeeper's binaries: the tray binary and
// the headless build under either of its names (LeanNames, for any target: a config file may have
// been written on another machine).
var authkeeperName = regexp.MustCompile(`^authkeeper(-headless|-(linux|darwin|windows|freebsd|openbsd)-(amd64|arm64|386|arm))?$`)

// isAuthkeeper reports whether cmd, a path from an agent's config file (of this OS or of Windows),
// runs one of authkeeper's binaries.
func isAuthkeeper(cmd string) bool {
	base := filepath.Base(filepath.ToSlash(cmd))
	if i := strings.LastIndexByte(base, '\\'); i >= 0 { // a Windows path read on any OS
		base = base[i+1:]
	}
	return authkeeperName.MatchString(strings.TrimSuffix(strings.ToLower(base), ".exe"))
}
