//go:build !headless

package tray

import "github.com/authkeeper/authkeeper/keychain"

// firstRun guides the first start: when the tray starts for the first time (keychain.Prefs.FirstRunDone
// is unset) with no server configured, it opens the Add server window, with a welcome. The flag is set
// on that first start whatever follows — the user adds a server, closes the window, or quits — so
// the window opens by itself once in the life of a configuration: never again after the user closed
// it, and never once a server has existed (a start with servers sets the flag too, so removing them
// all later brings no welcome). Should the preferences not save, the user is told (setPref) and the
// window opens again on the next start. UI goroutine.
func (u *ui) firstRun() {
	if u.eng.Prefs().FirstRunDone {
		return
	}
	empty := len(u.snap.Servers) == 0
	u.setPref(func(p *keychain.Prefs) { p.FirstRunDone = true })
	if !empty {
		return
	}
	// Posted, not run now: in the app, newUI runs before the UI loop, and gui needs the loop to
	// start fyne's (see mainLoop.gui).
	u.cfg.Post(func() {
		u.gui(func() {
			u.showAdd()
			u.adder.welcome()
		})
		if u.cfg.Steps != nil {
			u.cfg.Steps("first run")
		}
	})
}
