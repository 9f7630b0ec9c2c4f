package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// nfpm is the pinned packager `make dist` runs (the Makefile's NFPM); `go run` keeps it out of go.mod.
const nfpm = "github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"

// debVersion runs packaging/debversion.sh, the Makefile's DEB_VERSION.
func debVersion(t *testing.T, describe string) string {
	t.Helper()
	out, err := exec.Command("sh", "packaging/debversion.sh", describe).Output()
	if err != nil {
		t.Fatalf("debversion.sh %q: %v", describe, err)
	}
	return strings.TrimSpace(string(out))
}

// TestDebVersionIsValidAndSortsAsGitHistory pins the rewriting of `git describe` into a Debian version:
// each result is valid for dpkg, and dpkg orders them as the history does (a pre-release before its
// release, commits after a tag after it, an untagged tree before every release).
func TestDebVersionIsValidAndSortsAsGitHistory(t *testing.T) {
	testbed.Need(t, "sh", "dpkg")
	// In the order dpkg must sort them; a dirty tree has no place in the history but its commit's.
	tests := []struct{ describe, want string }{
		{"44809e2", "0.0.0+g44809e2"},
		{"44809e2-dirty", "0.0.0+g44809e2.dirty"},
		{"v1.0.0-rc.1", "1.0.0~rc.1"},
		{"v1.0.0-rc.1-3-gabc1234", "1.0.0~rc.1+3.gabc1234"},
		{"v1.0.0", "1.0.0"},
		{"v1.0.0-dirty", "1.0.0+dirty"},
		{"v1.0.0-12-gdef5678", "1.0.0+12.gdef5678"},
		{"v1.0.0-12-gdef5678-dirty", "1.0.0+12.gdef5678.dirty"},
		{"v1.0.1", "1.0.1"},
	}
	var prev string
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			got := debVersion(t, tt.describe)
			if got != tt.want {
				t.Errorf("debversion.sh %q = %q, want %q", tt.describe, got, tt.want)
			}
			if out, err := exec.Command("dpkg", "--validate-version", got).CombinedOutput(); err != nil {
				t.Errorf("dpkg --validate-version %q: %v %s", got, err, out)
			}
			if strings.HasSuffix(tt.describe, "-dirty") {
				return
			}
			if prev != "" {
				if err := exec.Command("dpkg", "--compare-versions", prev, "lt", got).Run(); err != nil {
					t.Errorf("dpkg does not sort %q before %q", prev, got)
				}
			}
			prev = got
		})
	}
}

// srcLine matches a `src:` entry of packaging/nfpm.yaml's contents; appID FyneApp.toml's ID.
var (
	srcLine = regexp.MustCompile(`(?m)^\s*- src:\s*(\S+)\s*$`)
	appID   = regexp.MustCompile(`(?m)^ID\s*=\s*"([^"]+)"`)
)

// TestDebPackageInstallsTheBinaryDesktopEntryAndIcon builds the .deb as `make dist` does (nfpm and
// packaging/nfpm.yaml, around the binary under test) and reads it back with dpkg-deb: the control
// fields, the three installed files, a desktop entry whose Exec and Icon name what the package installs,
// and the packaged binary printing its version. Installing it (dpkg -i) needs root and changes the
// machine, so `make dist` leaves that to a person; this is what can be checked without.
func TestDebPackageInstallsTheBinaryDesktopEntryAndIcon(t *testing.T) {
	testbed.Need(t, "sh", "dpkg", "dpkg-deb", "go")
	bin := e2e.MustBinary(t)

	// nfpm reads its sources relative to the working directory: stage them as in the repository, with
	// the binary under test as bin/authkeeper.
	stage := t.TempDir()
	config, err := os.ReadFile("packaging/nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, "packaging/nfpm.yaml", filepath.Join(stage, "packaging/nfpm.yaml"))
	for _, m := range srcLine.FindAllStringSubmatch(string(config), -1) {
		from := m[1]
		if from == "bin/authkeeper" {
			from = bin
		}
		copyFile(t, from, filepath.Join(stage, m[1]))
	}
	const version = "1.2.3+4.gabc1234"
	out := filepath.Join(t.TempDir(), "authkeeper.deb")
	cmd := exec.Command("go", "run", nfpm, "package", "--config", "packaging/nfpm.yaml", "--packager", "deb", "--target", out)
	cmd.Dir = stage
	cmd.Env = append(os.Environ(), "DEB_VERSION="+version)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nfpm: %v\n%s", err, b)
	}

	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Recommends"} {
		b, err := exec.Command("dpkg-deb", "--field", out, f).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v", f, err)
		}
		fields[f] = strings.TrimSpace(string(b))
	}
	if fields["Package"] != "authkeeper" || fields["Version"] != version || fields["Architecture"] != "amd64" {
		t.Errorf("control fields %v, want authkeeper %s amd64", fields, version)
	}
	for _, dep := range []string{"libc6", "libgl1", "libx11-6"} {
		if !strings.Contains(fields["Depends"], dep) {
			t.Errorf("Depends %q lacks %s, which the binary links", fields["Depends"], dep)
		}
	}
	if !strings.Contains(fields["Recommends"], "gnome-keyring") {
		t.Errorf("Recommends %q lacks a Secret Service (gnome-keyring)", fields["Recommends"])
	}

	// The desktop file ID is the app ID (FyneApp.toml's, which tray.AppID repeats).
	toml, err := os.ReadFile("FyneApp.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := appID.FindSubmatch(toml)
	if m == nil {
		t.Fatal("FyneApp.toml has no ID")
	}
	id := string(m[1])
	root := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", out, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	entry, err := os.ReadFile(filepath.Join(root, "usr/share/applications", id+".desktop"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, l := range strings.Split(string(entry), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			keys[k] = v
		}
	}
	// Exec is looked up on PATH, Icon in the icon theme: both must be what the package installs.
	if fi, err := os.Stat(filepath.Join(root, "usr/bin", keys["Exec"])); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("desktop entry Exec=%q: not an executable in /usr/bin (%v)", keys["Exec"], err)
	}
	icon, err := os.ReadFile(filepath.Join(root, "usr/share/icons/hicolor/512x512/apps", keys["Icon"]+".png"))
	if err != nil || !bytes.HasPrefix(icon, []byte("\x89PNG")) {
		t.Errorf("desktop entry Icon=%q: no PNG of that name in the hicolor theme (%v)", keys["Icon"], err)
	}
	if keys["Icon"] != id {
		t.Errorf("desktop entry Icon=%q, want the app ID %q", keys["Icon"], id)
	}
	v, err := exec.Command(filepath.Join(root, "usr/bin/authkeeper"), "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "authkeeper ") {
		t.Errorf("packaged binary: version printed %q, %v", v, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
