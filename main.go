// Command authkeeper keeps the OAuth credentials of remote MCP servers fresh so that long-running AI
// agents never stop on an expired token. See README.md.
package main

import (
	"context"
	"os"

	"github.com/authkeeper/authkeeper/app"
	// First, before fyne's lang package reads the locale: see its doc.
	_ "github.com/authkeeper/authkeeper/app/locale"
	"github.com/authkeeper/authkeeper/app/startup"
	"github.com/authkeeper/authkeeper/tray"
)

func main() {
	startup.Resume() // the collector was off while the packages initialized
	os.Exit(app.Run(context.Background(), os.Args, tray.Run))
}
