//go:build !headless && (linux || freebsd || openbsd || netbsd || dragonfly)

package tray

import "fyne.io/fyne/v2"

// lazyLoop: on these systems the tray is a StatusNotifierItem over D-Bus, which needs no GUI event
// loop, so fyne's loop waits until a window or the clipboard is needed (see mainLoop).
const lazyLoop = true

// startShell shows the tray item; post runs work on the UI goroutine.
func startShell(_ fyne.App, post func(func())) shell { return startSystray("authkeeper", post) }
