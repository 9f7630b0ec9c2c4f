package profiles

import (
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestSignInCompletesWhileTheBrowserOpenerBlocks is the defect found by running the binary as a new
// user would: xdg-open in its generic mode runs the browser in the foreground and does not return until
// the browser exits, and pkg/browser waits for it. The sign-in must complete anyway (the callback is
// served independently of the opener), print the URL for pasting, and do so long before the opener
// returns.
func TestSignInCompletesWhileTheBrowserOpenerBlocks(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: read})
	in := e2e.NewInstall(t, e2e.Options{OpenerBlocks: true})
	start := time.Now()
	res := in.MustCLI(nil, "add", srv.URL, "--name", "blocked")
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("add took %v: it waited for the opener", took)
	}
	if !strings.Contains(res.Stdout, "If your browser did not open, open this URL: "+as.AuthURL) {
		t.Errorf("add did not print the authorization URL for pasting:\n%s", res.Stdout)
	}
	in.Connect(t, "blocked").MustEcho(t, "signed in while the opener was still running")
}
