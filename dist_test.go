package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"text/template"

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
// packaging/nfpm.yaml, around the binaries under test) and reads it back with dpkg-deb: the control
// fields, the installed files, a desktop entry whose Exec and Icon name what the package installs, the
// packaged binaries printing their version, and the packaged tray binary writing the headless build
// into an agent's stdio entry, which `doctor` recognises. Installing it (dpkg -i) needs root and
// changes the machine, so `make dist` leaves that to a person; this is what can be checked without.
func TestDebPackageInstallsTheBinaryDesktopEntryAndIcon(t *testing.T) {
	testbed.Need(t, "sh", "dpkg", "dpkg-deb", "go")
	if runtime.GOARCH != "amd64" {
		t.Skipf("the .deb is for amd64 (packaging/nfpm.yaml); this machine is %s", runtime.GOARCH)
	}
	bin := e2e.MustBinary(t)
	hdir, _ := headlessDir(t)
	lean := filepath.Join(hdir, headlessName("linux/amd64"))
	if _, err := os.Stat(lean); err != nil {
		t.Fatalf("the .deb packages the linux/amd64 headless build: %v", err)
	}

	// nfpm reads its sources relative to the working directory: stage them as in the repository, with
	// the binary under test as bin/authkeeper.
	stage := t.TempDir()
	config, err := os.ReadFile("packaging/nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	testbed.CopyFile(t, "packaging/nfpm.yaml", filepath.Join(stage, "packaging/nfpm.yaml"))
	for _, m := range srcLine.FindAllStringSubmatch(string(config), -1) {
		from := m[1]
		switch from {
		case "bin/authkeeper":
			from = bin
		case "bin/headless/authkeeper-linux-amd64":
			from = lean
		}
		testbed.CopyFile(t, from, filepath.Join(stage, m[1]))
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
		t.Fatalf("packaged binary: version printed %q, %v", v, err)
	}
	if lv, err := exec.Command(filepath.Join(root, "usr/bin/authkeeper-headless"), "version").Output(); err != nil || string(lv) != string(v) {
		t.Fatalf("packaged headless build: version printed %q, %v; want the tray binary's %q", lv, err, v)
	}
	packagedBridgeEntry(t, root)
}

// packagedBridgeEntry runs the packaged tray binary's `clients --write claude-desktop` in a home of its
// own, with one server configured, and checks the entry it writes runs the packaged headless build's
// bridge, and that `doctor` from either binary counts that entry as pointing at authkeeper.
func packagedBridgeEntry(t *testing.T, root string) {
	tray, lean := filepath.Join(root, "usr/bin/authkeeper"), filepath.Join(root, "usr/bin/authkeeper-headless")
	home := t.TempDir()
	conf := filepath.Join(home, ".config", "authkeeper")
	if err := os.MkdirAll(conf, 0o700); err != nil {
		t.Fatal(err)
	}
	settings := `{"servers":[{"name":"bench","url":"https://mcp.example.com/mcp"}],"prefs":{"store":"file"}}`
	if err := os.WriteFile(filepath.Join(conf, "config.json"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := os.MkdirTemp("/tmp", "akdeb") // short: it would hold the control socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	envv := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_STATE_HOME=" + filepath.Join(home, ".state"),
		"XDG_RUNTIME_DIR=" + rt, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = envv
		out, err := cmd.CombinedOutput()
		if err != nil && args[0] != "doctor" { // doctor exits 1 for the checks a bare home fails
			t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run(tray, "clients", "bench"); !strings.Contains(out, "# Stdio entries run "+lean+", the headless build") {
		t.Errorf("clients: output lacks the headless build's line:\n%s", out)
	}
	run(tray, "clients", "--write", "claude-desktop", "bench")
	cfgPath := filepath.Join(home, ".config", "Claude", "claude_desktop_config.json")
	if cmd, args := e2e.BridgeEntry(t, cfgPath, "bench"); cmd != lean || strings.Join(args, " ") != "bridge bench" {
		t.Errorf("Claude Desktop's entry runs %q %q, want %q [bridge bench]", cmd, args, lean)
	}
	for _, bin := range []string{tray, lean} {
		if out := run(bin, "doctor"); !strings.Contains(out, "ok    client claude-desktop: bench in ~/.config/Claude/claude_desktop_config.json points at authkeeper (authkeeper bridge)\n") {
			t.Errorf("%s doctor does not count the entry:\n%s", filepath.Base(bin), out)
		}
	}

	// An entry written before the headless build was installed runs the tray binary: doctor, from
	// either binary, says a bridge starts sooner from the headless build, and how to switch.
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(data), `"command": "`+lean+`"`, `"command": "`+tray+`"`, 1)
	if old == string(data) {
		t.Fatalf("no command %q in:\n%s", lean, data)
	}
	if err := os.WriteFile(cfgPath, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{tray, lean} {
		out := run(bin, "doctor")
		for _, want := range []string{"warn  client claude-desktop: bench in ~/.config/Claude/claude_desktop_config.json points at authkeeper (authkeeper bridge), but runs the tray binary " + tray +
			": a bridge starts sooner from the headless build installed next to it, " + lean, "authkeeper clients --write claude-desktop bench"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s doctor lacks %q:\n%s", filepath.Base(bin), want, out)
			}
		}
	}
}

// fyneTools is the fyne packager `make package` runs; its Makefile template is what the tarball holds.
const fyneTools = "fyne.io/tools@v1.7.4"

// TestTarballGetsTheHeadlessBuildAndItsInstallLines runs packaging/tarball-headless.sh, as `make dist`
// does, on a tarball laid out as `fyne package -os linux` lays it out, with the Makefile rendered from
// fyne's own template (the pinned fyne.io/tools module's). Small scripts stand in for the two binaries:
// the script copies them and edits the Makefile, which is what is checked — `make install`, `uninstall`
// and `user-install` then place or remove both. A Makefile the script does not know (no install line
// for the binary) fails it and leaves the tarball as it was. `make dist` checks the real tarball.
func TestTarballGetsTheHeadlessBuildAndItsInstallLines(t *testing.T) {
	testbed.Need(t, "sh", "tar", "xz", "make", "awk", "go")
	dl, err := exec.Command("go", "mod", "download", "-json", fyneTools).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", fyneTools, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(dl, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", fyneTools, err, dl)
	}
	tpl, err := template.ParseFiles(filepath.Join(mod.Dir, "cmd/fyne/internal/templates/data/Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	// The fields fyne's package-unix.go fills for this app (Local: its tarball's usr/local).
	var makefile bytes.Buffer
	if err := tpl.Option("missingkey=error").Execute(&makefile, map[string]string{"AppID": "dev.authkeeper.app", "Name": "authkeeper", "Exec": "authkeeper",
		"Icon": "dev.authkeeper.app.png", "Local": "local/"}); err != nil {
		t.Fatal(err)
	}
	tarball := func(t *testing.T, makefile []byte) string {
		stage := t.TempDir()
		for name, content := range map[string]string{
			"authkeeper/Makefile":                                                string(makefile),
			"authkeeper/usr/local/bin/authkeeper":                                "#!/bin/sh\necho tray\n",
			"authkeeper/usr/local/share/applications/dev.authkeeper.app.desktop": "[Desktop Entry]\n",
			"authkeeper/usr/local/share/pixmaps/dev.authkeeper.app.png":          "\x89PNG",
		} {
			p := filepath.Join(stage, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		tb := filepath.Join(t.TempDir(), "authkeeper-linux-amd64.tar.xz")
		if out, err := exec.Command("tar", "-cJf", tb, "-C", stage, "authkeeper").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		return tb
	}
	lean := filepath.Join(t.TempDir(), "authkeeper-linux-amd64")
	if err := os.WriteFile(lean, []byte("#!/bin/sh\necho headless\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	tb := tarball(t, makefile.Bytes())
	if out, err := exec.Command("packaging/tarball-headless.sh", tb, lean).CombinedOutput(); err != nil {
		t.Fatalf("tarball-headless.sh: %v\n%s", err, out)
	}
	root := t.TempDir()
	if out, err := exec.Command("tar", "-xJf", tb, "-C", root).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	top := filepath.Join(root, "authkeeper")
	if got, err := exec.Command(filepath.Join(top, "usr/local/bin/authkeeper-headless")).Output(); err != nil || string(got) != "headless\n" {
		t.Fatalf("usr/local/bin/authkeeper-headless ran: %q, %v", got, err)
	}
	mk := func(home string, args ...string) {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-s", "-C", top}, args...)...)
		cmd.Env = append(os.Environ(), "MAKEFLAGS=", "HOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	dest, home := t.TempDir(), t.TempDir()
	mk(home, "install", "DESTDIR="+dest, "PREFIX=/usr")
	for _, b := range []string{"authkeeper", "authkeeper-headless"} {
		if !exists(filepath.Join(dest, "usr/bin", b)) {
			t.Errorf("make install: no /usr/bin/%s", b)
		}
	}
	mk(home, "uninstall", "DESTDIR="+dest, "PREFIX=/usr")
	for _, b := range []string{"authkeeper", "authkeeper-headless"} {
		if exists(filepath.Join(dest, "usr/bin", b)) {
			t.Errorf("make uninstall left /usr/bin/%s", b)
		}
	}
	mk(home, "user-install")
	for _, b := range []string{"authkeeper", "authkeeper-headless"} {
		if !exists(filepath.Join(home, ".local/bin", b)) {
			t.Errorf("make user-install: no ~/.local/bin/%s", b)
		}
	}
	mk(home, "user-uninstall")
	if exists(filepath.Join(home, ".local/bin/authkeeper-headless")) {
		t.Error("make user-uninstall left ~/.local/bin/authkeeper-headless")
	}

	// A second run refuses, and leaves the tarball as it was.
	before, err := os.ReadFile(tb)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("packaging/tarball-headless.sh", tb, lean).CombinedOutput(); err == nil || !strings.Contains(string(out), "already holds usr/local/bin/authkeeper-headless") {
		t.Errorf("a second run: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(tb); !bytes.Equal(before, after) {
		t.Error("a second run changed the tarball")
	}

	// A Makefile without the lines the script knows: an error naming the count, the tarball untouched.
	odd := tarball(t, []byte("install:\n\tcp -r usr $(DESTDIR)/\n"))
	before, err = os.ReadFile(odd)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("packaging/tarball-headless.sh", odd, lean).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "0 lines of fyne's Makefile install or remove bin/$(Exec), want 4") {
		t.Errorf("an unknown Makefile: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(odd); !bytes.Equal(before, after) {
		t.Error("the script changed a tarball it refused")
	}
}
