// Package assets holds authkeeper's embedded icons as PNG bytes: the application icon and one tray icon
// per state. Linux status-notifier trays accept PNG only. The files are drawn by gen.go.
package assets

import _ "embed"

//go:generate go run gen.go

var (
	// Icon is the 512×512 application icon (also named by FyneApp.toml for packaging).
	//go:embed icon.png
	Icon []byte

	// TrayFresh is shown while every server holds a valid token.
	//go:embed tray-fresh.png
	TrayFresh []byte

	// TrayBusy is shown while an agent turn is busy and refreshes are deferred.
	//go:embed tray-busy.png
	TrayBusy []byte

	// TrayAttention is shown while a server needs the user to sign in again.
	//go:embed tray-attention.png
	TrayAttention []byte

	// TrayError is shown while a server cannot get a token for another reason.
	//go:embed tray-error.png
	TrayError []byte

	// TrayEmpty is shown while no server is configured (the first run): grey, on a pale disc.
	//go:embed tray-empty.png
	TrayEmpty []byte
)
