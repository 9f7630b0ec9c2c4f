//go:build linux

package wine

import (
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestTrayExeIsAGUIProgramThatPrintsToTheConsoleItIsStartedFrom: authkeeper.exe is linked for the
// GUI subsystem (no console window opens with the tray), yet its command line prints when started
// from a console as Windows starts a GUI program, with no standard handles: it attaches to its parent's
// console (app/console_windows.go). Under Wine the program is already attached to that console, but
// without handles, and without the attach its output is lost. The console is a Wine console on a
// pseudo-terminal (script), the parent a small launcher (testdata/launch).
func TestTrayExeIsAGUIProgramThatPrintsToTheConsoleItIsStartedFrom(t *testing.T) {
	b := newBench(t)
	exe := b.artefact(t, "authkeeper.exe")
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	opt, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	f.Close()
	if !ok || opt.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		t.Fatalf("%s: optional header %T, subsystem %v; want a 64-bit GUI-subsystem exe (-H=windowsgui)", exe, f.OptionalHeader, opt)
	}

	testbed.Need(t, "script", "go")
	launch := filepath.Join(t.TempDir(), "launch.exe")
	build := exec.Command("go", "build", "-o", launch, "./testdata/launch")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the launcher: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"stdout", []string{"version"}, "authkeeper "},
		{"stderr", []string{"no-such-command"}, `authkeeper: unknown command "no-such-command"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// script runs the line in a shell on a new pseudo-terminal, which Wine makes the console.
			var line []string
			for _, w := range append([]string{"wine", launch, windowsPath(exe)}, tt.args...) {
				line = append(line, "'"+w+"'") // no word here has a quote
			}
			cmd := exec.Command("script", "-qec", strings.Join(line, " "), "/dev/null")
			cmd.Env = b.env()
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("started with no standard handles, `authkeeper.exe %s` printed:\n%q\nwant %q", strings.Join(tt.args, " "), out, tt.want)
			}
		})
	}
}
