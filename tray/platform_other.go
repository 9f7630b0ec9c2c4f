//go:build !headless && !(linux || freebsd || openbsd || netbsd || dragonfly)

package tray

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/systray"
)

// lazyLoop: on macOS and Windows systray's item lives in the native event loop of the main thread,
// which only fyne's loop runs, so fyne's own tray is used and its loop runs from the start.
const lazyLoop = false

// startShell returns fyne's own tray; post is not needed (fyne runs the clicks on its loop).
func startShell(a fyne.App, _ func(func())) shell { return fyneShell{desk: a.(desktop.App)} }

// fyneShell is fyne's tray. Its methods run on the UI goroutine.
type fyneShell struct{ desk desktop.App }

func (s fyneShell) SetMenu(m *fyne.Menu)    { s.desk.SetSystemTrayMenu(m) }
func (s fyneShell) SetIcon(r fyne.Resource) { s.desk.SetSystemTrayIcon(r) }

// SetTooltip sets the tooltip through fyne.io/systray, fyne's tray library (fyne has no tooltip API).
func (fyneShell) SetTooltip(t string) { systray.SetTooltip(t) }
