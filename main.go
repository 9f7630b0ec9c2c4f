// Command authkeeper keeps the OAuth credentials of remote MCP servers fresh so that long-running AI
// agents never stop on an expired token. See README.md.
package main

import (
	"context"
	"os"

	"github.com/authkeeper/authkeeper/app"
	"github.com/authkeeper/authkeeper/tray"
)

func main() {
	os.Exit(app.Run(context.Background(), os.Args, tray.Run))
}
