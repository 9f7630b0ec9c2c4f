//go:build !headless

package tray

import (
	"fyne.io/fyne/v2"
	"fyne.io/systray"
)

// shell is the tray icon and its menu (see startShell); nil under fyne's test driver, which has no tray.
type shell interface {
	SetMenu(m *fyne.Menu)
	SetIcon(r fyne.Resource)
	SetTooltip(s string)
}

// systrayShell is the StatusNotifierItem and its D-Bus menu, driven through fyne.io/systray directly —
// the library fyne's own tray is built on — so that the tray works without fyne's event loop (see
// mainLoop). Its methods and its ready callback run on the UI goroutine; clicks are posted there.
type systrayShell struct {
	post  func(func())
	ready bool
	menu  *fyne.Menu // the menu to show once systray is ready
}

// startSystray registers the tray item under title. It is never ended explicitly: systray's end
// closes the process's shared session-bus connection, which the keychain and notifications use too
// while the engine shuts down after the tray; the item goes with the process.
func startSystray(title string, post func(func())) *systrayShell {
	s := &systrayShell{post: post}
	start, _ := systray.RunWithExternalLoop(func() {
		post(func() {
			s.ready = true
			s.apply()
		})
	}, nil)
	systray.SetTitle(title) // some XDG trays fail on an item without a title
	start()
	return s
}

// SetMenu shows m, replacing the menu. A menu set before systray is ready is shown when it is: items
// added earlier would be lost.
func (s *systrayShell) SetMenu(m *fyne.Menu) {
	s.menu = m
	if s.ready {
		s.apply()
	}
}

func (s *systrayShell) apply() {
	if s.menu == nil {
		return
	}
	systray.ResetMenu()
	s.add(s.menu.Items, nil)
}

// add adds items under parent (nil: the top level). Each item's click channel is closed when the next
// ResetMenu removes it, which ends the goroutine that follows it.
func (s *systrayShell) add(items []*fyne.MenuItem, parent *systray.MenuItem) {
	for _, mi := range items {
		if mi.IsSeparator {
			if parent != nil {
				parent.AddSeparator()
			} else {
				systray.AddSeparator()
			}
			continue
		}
		var it *systray.MenuItem
		switch {
		case parent != nil && mi.Checked:
			it = parent.AddSubMenuItemCheckbox(mi.Label, "", true)
		case parent != nil:
			it = parent.AddSubMenuItem(mi.Label, "")
		case mi.Checked:
			it = systray.AddMenuItemCheckbox(mi.Label, "", true)
		default:
			it = systray.AddMenuItem(mi.Label, "")
		}
		if mi.Disabled {
			it.Disable()
		}
		if mi.ChildMenu != nil {
			s.add(mi.ChildMenu.Items, it)
		}
		action := mi.Action
		go func() {
			for range it.ClickedCh {
				if action != nil {
					s.post(action)
				}
			}
		}()
	}
}

// SetIcon shows r, a PNG (what StatusNotifierItem hosts on Linux accept), as the tray icon.
func (s *systrayShell) SetIcon(r fyne.Resource) { systray.SetIcon(r.Content()) }

// SetTooltip sets the tray item's tooltip. systray's setter is safe from any goroutine.
func (s *systrayShell) SetTooltip(t string) { systray.SetTooltip(t) }
