package engine

import "github.com/pkg/browser"

// systemBrowser opens URLs in the user's browser. pkg/browser runs xdg-open on Linux (ignoring
// $BROWSER), `open` on macOS and the URL handler on Windows.
type systemBrowser struct{}

func (systemBrowser) Open(url string) error { return browser.OpenURL(url) }
