//go:build !headless && !(linux || freebsd || openbsd || netbsd || dragonfly)

package tray

// desktopNotifier is fyne's notifications on macOS and Windows: fyne v2.7.1 sends the title and text
// only (UNUserNotificationCenter, or osascript for an unbundled app, on macOS; a PowerShell toast on
// Windows), with no action and no click reported back, so the text says where in the menu to act.
func desktopNotifier(fallback notifier, _ func(action, string)) notifier { return fallback }
