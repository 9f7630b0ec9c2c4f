//go:build !headless

package tray

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestFyneMenuMirrorsTheModelAndClicksCarryTheirServer renders the menu for the fixture (every kind of
// item), checks the fyne menu item for item, taps "Refresh now" under a server, and writes the
// screenshot of the menu with that server's submenu open beside it.
func TestFyneMenuMirrorsTheModelAndClicksCarryTheirServer(t *testing.T) {
	test.NewTempApp(t)
	s, _ := fixture()
	model := menuModel(s, keychain.Prefs{Notifications: true}, now)
	var clicked []item
	m := fyneMenu(model, func(it item) { clicked = append(clicked, it) })

	var check func(model []item, got []*fyne.MenuItem)
	check = func(model []item, got []*fyne.MenuItem) {
		if len(got) != len(model) {
			t.Fatalf("fyne menu has %d items, model %d", len(got), len(model))
		}
		for i, it := range model {
			g := got[i]
			if g.IsSeparator != it.Separator || g.Label != it.Label || g.Checked != it.Checked || g.Disabled != it.Disabled {
				t.Errorf("item %d = %+v, want model %+v", i, g, it)
			}
			if it.Action == actQuit && !g.IsQuit {
				t.Errorf("Quit is not fyne's quit item")
			}
			if len(it.Children) > 0 {
				check(it.Children, g.ChildMenu.Items)
			}
		}
	}
	check(model, m.Items)

	linear := m.Items[3]
	if linear.Label != "linear — needs sign-in" {
		t.Fatalf("item 3 = %q", linear.Label)
	}
	linear.ChildMenu.Items[1].Action() // Sign in again
	m.Items[2].ChildMenu.Items[0].Action()
	if len(clicked) != 2 || clicked[0].Action != actSignIn || clicked[0].Server != "linear" ||
		clicked[1].Action != actRefresh || clicked[1].Server != "github" {
		t.Errorf("clicks = %+v", clicked)
	}

	top := widget.NewMenu(m)
	sub := widget.NewMenu(linear.ChildMenu)
	w := test.NewTempWindow(t, container.NewHBox(container.NewVBox(top), container.NewVBox(widget.NewLabel(""), widget.NewLabel(""), widget.NewLabel(""), sub)))
	w.Resize(fyne.NewSize(720, 520))
	capture(t, w.Canvas(), "tray-menu.png")
}

// TestCopyClientConfigCopiesTheKeyInAHeader clicks "Copy client config" for a server of an engine
// whose proxy listens: the clipboard holds the proxy's URL for it, and the engine's access key only in
// the header.
func TestCopyClientConfigCopiesTheKeyInAHeader(t *testing.T) {
	home := t.TempDir()
	paths := engine.Paths{ConfigDir: filepath.Join(home, "config"), StateDir: filepath.Join(home, "state"), RuntimeDir: home}
	eng, err := engine.New(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", StoreKind: "file", Proxy: proxy.FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	if eng.ProxyURL() == "" {
		t.Fatal("the engine's proxy is not listening")
	}
	a := test.NewTempApp(t)
	l := newUILoop()
	u := newUI(ctx, a, eng, options{Post: l.post, Steps: l.step})
	t.Cleanup(u.close)

	u.do(item{Action: actCopyConfig, Server: "bench"})
	got := a.Clipboard().Content()
	key := eng.ProxyKey()
	if len(key) < 32 {
		t.Fatalf("engine proxy key %q", key)
	}
	checkKeyInHeader(t, got, "bench", eng.ProxyURL()+"/mcp/bench", key)
	if n := strings.Count(got, key); n != 1 {
		t.Errorf("the key appears %d times in the copied config, want once (the header):\n%s", n, got)
	}
}
