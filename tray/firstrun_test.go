//go:build !headless

package tray

import (
	"context"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
)

// trayStart is one start of the tray app over the configuration in paths, under fyne's test driver.
type trayStart struct {
	a    fyne.App
	eng  *engine.Engine
	u    *ui
	loop *uiLoop
}

func startTray(t *testing.T, paths engine.Paths) *trayStart {
	t.Helper()
	s := &trayStart{a: test.NewTempApp(t), eng: startEngine(t, paths), loop: newUILoop()}
	s.u = newUI(context.Background(), s.a, s.eng, options{Post: s.loop.post, Steps: s.loop.step})
	t.Cleanup(s.stop)
	return s
}

// stop ends this start as quitting the app does: the controller, then the engine.
func (s *trayStart) stop() {
	if s.u != nil {
		s.u.close()
		s.eng.Close()
		s.u = nil
	}
}

// addWindows are the titles of the Add server windows open in s.
func (s *trayStart) addWindows() []string {
	var out []string
	for _, w := range s.a.Driver().AllWindows() {
		if strings.HasPrefix(w.Title(), "Welcome to authkeeper") || strings.HasPrefix(w.Title(), "Add an MCP server") {
			out = append(out, w.Title())
		}
	}
	return out
}

// TestFirstRunOpensTheAddWindowOnceAndNeverAgain: the first start with no server opens the Add window
// with its welcome, and the tray's menu starts with "Add your first server…"; the user closes the
// window; the second start on the same configuration opens none (the menu item still does). The
// menu and the window go to first-run.png.
func TestFirstRunOpensTheAddWindowOnceAndNeverAgain(t *testing.T) {
	paths := tempPaths(t)
	first := startTray(t, paths)
	first.loop.wait(t, "first run")
	if got := first.addWindows(); len(got) != 1 || !strings.HasPrefix(got[0], "Welcome to authkeeper") {
		t.Fatalf("first start: Add windows %q, want the welcome", got)
	}
	if !first.u.adder.intro.Visible() || !strings.Contains(first.u.adder.intro.Text, "Paste the URL") {
		t.Errorf("first start: no welcome text in the Add window: %q", first.u.adder.intro.Text)
	}
	if got := first.u.model[0]; got.Label != "Add your first server…" || got.Action != actAdd {
		t.Errorf("first menu item %+v", got)
	}
	if !first.eng.Prefs().FirstRunDone {
		t.Errorf("the first run is not recorded in the preferences")
	}
	add := first.u.adder.w
	// Twice: wrapped labels measure their height at the width the first layout gave them.
	add.Resize(fyne.NewSize(540, 349))
	add.Resize(fyne.NewSize(540, 350))
	menu := test.NewTempWindow(t, container.NewVBox(widget.NewMenu(first.u.menu)))
	menu.Resize(fyne.NewSize(250, 350))
	captureSideBySide(t, "first-run.png", menu.Canvas(), add.Canvas())
	add.Close() // the user closes it
	first.stop()

	second := startTray(t, paths)
	second.loop.drain()
	if got := second.addWindows(); len(got) != 0 || second.u.adder != nil {
		t.Errorf("second start opened %q", got)
	}
	click(t, second.u.menu, "Add your first server…")
	if got := second.addWindows(); len(got) != 1 || got[0] != "Add an MCP server" {
		t.Errorf("after the menu item: Add windows %q", got)
	}
}

// TestFirstRunOpensNoAddWindowWhenAServerExists: a first start (no flag yet, as after an upgrade) with
// a server configured opens no window, and records the first run, so that removing every server
// later brings no welcome either.
func TestFirstRunOpensNoAddWindowWhenAServerExists(t *testing.T) {
	paths := tempPaths(t)
	conf, err := keychain.NewConfigFile(paths.ConfigDir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	settings := keychain.DefaultSettings()
	settings.Servers = []keychain.Server{{Name: "linear", URL: "https://mcp.example.com/mcp"}}
	if err := conf.Save(settings); err != nil {
		t.Fatal(err)
	}
	s := startTray(t, paths)
	s.loop.drain()
	if got := s.addWindows(); len(got) != 0 || s.u.adder != nil {
		t.Errorf("a start with a server opened %q", got)
	}
	if !s.eng.Prefs().FirstRunDone {
		t.Errorf("a start with a server did not record the first run")
	}
	for _, st := range s.loop.steps {
		if st == "first run" {
			t.Errorf("first run step with a server configured")
		}
	}
}
