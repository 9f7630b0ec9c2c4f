//go:build !headless

package tray

import (
	"context"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/tray/autostart"
)

// setPref changes the engine's preferences (the tray keeps none of its own) and redraws the menu.
func (u *ui) setPref(change func(*keychain.Prefs)) {
	p := u.eng.Prefs()
	change(&p)
	if err := u.eng.SetPrefs(p); err != nil {
		u.out.send(fyne.NewNotification("Could not save the preference", err.Error()))
	}
	u.rerender()
}

// toggleAutostart writes or removes the OS's start-at-login entry, then records the choice.
func (u *ui) toggleAutostart() {
	on := !u.eng.Prefs().StartAtLogin
	if err := autostart.Set(u.cfg.Autostart, on); err != nil {
		u.out.send(fyne.NewNotification("Start at login failed", err.Error()))
		return
	}
	u.setPref(func(p *keychain.Prefs) { p.StartAtLogin = on })
}

// renewAutostart rewrites the entry when start at login is on, so it names the program that runs now
// (an upgrade may have moved it).
func (u *ui) renewAutostart() {
	if !u.eng.Prefs().StartAtLogin {
		return
	}
	if err := autostart.Set(u.cfg.Autostart, true); err != nil {
		u.out.send(fyne.NewNotification("Start at login failed", err.Error()))
	}
}

// confirmRemove asks, in a small window of its own (never a modal that blocks the tray), whether to
// remove server name.
func (u *ui) confirmRemove(name string) {
	if w, ok := u.removes[name]; ok {
		w.Show()
		w.RequestFocus()
		return
	}
	w := u.a.NewWindow("Remove " + name)
	u.removes[name] = w
	w.SetOnClosed(func() { delete(u.removes, name) })
	msg := widget.NewLabel(fmt.Sprintf("Remove %s? Its tokens are revoked and deleted, and agents using it through the proxy stop working.", name))
	msg.Wrapping = fyne.TextWrapWord
	remove := widget.NewButton("Remove", func() {
		w.Close()
		go u.background("Remove "+name, func(ctx context.Context) error { return u.eng.Remove(ctx, name) })
	})
	remove.Importance = widget.DangerImportance
	w.SetContent(container.NewVBox(msg, container.NewHBox(widget.NewButton("Cancel", w.Close), remove)))
	w.Resize(fyne.NewSize(420, 120))
	w.Show()
}
