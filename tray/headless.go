//go:build headless

// Package tray is authkeeper's desktop front end. This is the headless build's (`go build -tags
// headless`, with CGO_ENABLED=0): it links no GUI toolkit and no cgo, and Run is nil, so the program
// runs the engine without a tray, as it does on a machine without a display.
package tray

import "github.com/authkeeper/authkeeper/app"

// Run is nil in the headless build: app.Run then serves headless.
var Run app.UI
