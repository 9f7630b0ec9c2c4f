package engine

import (
	"fmt"

	"github.com/authkeeper/authkeeper/keychain"
)

// Prefs returns the app-wide preferences (notifications, start at login, …).
func (e *Engine) Prefs() keychain.Prefs {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.settings.Prefs
}

// SetPrefs saves new preferences.
func (e *Engine) SetPrefs(p keychain.Prefs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := e.settings
	next.Prefs = p
	if err := e.conf.Save(next); err != nil {
		return fmt.Errorf("save preferences: %w", err)
	}
	e.settings = next
	return nil
}

// SetShowHandler registers what a second launch of the app does: the tray shows its status window.
// f runs on a control-API goroutine; the tray must hop to the UI thread itself.
func (e *Engine) SetShowHandler(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.showUI = f
}

// Show runs the show handler, reporting whether there was one.
func (e *Engine) Show() bool {
	e.mu.Lock()
	f := e.showUI
	e.mu.Unlock()
	if f == nil {
		return false
	}
	f()
	return true
}
