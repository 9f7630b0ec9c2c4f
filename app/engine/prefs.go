package engine

import (
	"fmt"

	"github.com/authkeeper/authkeeper/keychain"
)

// Prefs returns the app-wide preferences (notifications, start at login, …).
func (e *Engine) Prefs() keychain.Prefs {
	e.Mu.Lock()
	defer e.Mu.Unlock()
	return e.Settings.Prefs
}

// SetPrefs saves new preferences.
func (e *Engine) SetPrefs(p keychain.Prefs) error {
	e.Mu.Lock()
	defer e.Mu.Unlock()
	next := e.Settings
	next.Prefs = p
	if err := e.conf.Save(next); err != nil {
		return fmt.Errorf("save preferences: %w", err)
	}
	e.Settings = next
	return nil
}

// SetShowHandler registers what a second launch of the app does: the tray shows its status window.
// f runs on a control-API goroutine; the tray must hop to the UI thread itself.
func (e *Engine) SetShowHandler(f func()) {
	e.Mu.Lock()
	defer e.Mu.Unlock()
	e.showUI = f
}

// show runs the show handler, reporting whether there was one.
func (e *Engine) Show() bool {
	e.Mu.Lock()
	f := e.showUI
	e.Mu.Unlock()
	if f == nil {
		return false
	}
	f()
	return true
}
