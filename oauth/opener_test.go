package oauth

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// openerFunc adapts a function to Opener.
type openerFunc func(string) error

func (f openerFunc) Open(u string) error { return f(u) }

// TestSignInDoesNotWaitForTheOpener pins issue 11 point 12: pkg/browser may block until the browser
// exits, or fail, and the sign-in must go on regardless, completed by the user from the printed URL.
func TestSignInDoesNotWaitForTheOpener(t *testing.T) {
	t.Run("OpenerBlocksForever", func(t *testing.T) {
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		b := newBench(t, benchOptions{})
		b.client.opener = openerFunc(func(u string) error {
			if err := b.browser.Open(u); err != nil { // the browser runs in the foreground...
				return err
			}
			<-release // ...and xdg-open returns only when it exits
			return nil
		})
		tok, _ := b.signIn(t, SignInOptions{})
		requireAccepted(t, b.mcp.URL, tok)
	})
	t.Run("OpenerFailsTheUserPastesTheURL", func(t *testing.T) {
		b := newBench(t, benchOptions{})
		b.client.opener = openerFunc(func(string) error { return errors.New("exit status 1") })
		var mu sync.Mutex
		var printed []string
		tok, _ := b.signIn(t, SignInOptions{OnURL: func(u string) {
			mu.Lock()
			printed = append(printed, u)
			mu.Unlock()
			go func() { _ = b.browser.Open(u) }() // the user pastes it
		}})
		requireAccepted(t, b.mcp.URL, tok)
		if len(printed) != 1 || !strings.Contains(printed[0], "code_challenge=") {
			t.Errorf("OnURL got %q, want the authorization URL once", printed)
		}
	})
	t.Run("NoOpenerOnlyOnURL", func(t *testing.T) {
		b := newBench(t, benchOptions{})
		b.client.opener = nil
		tok, _ := b.signIn(t, SignInOptions{OnURL: func(u string) { go func() { _ = b.browser.Open(u) }() }})
		requireAccepted(t, b.mcp.URL, tok)
		if _, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{}); !errors.Is(err, ErrNoOpener) {
			t.Errorf("SignIn with neither opener nor OnURL = %v, want ErrNoOpener", err)
		}
	})
	t.Run("OpenerFailedAndNobodyPastedTimesOutSayingWhy", func(t *testing.T) {
		b := newBench(t, benchOptions{browser: testbed.BrowserOptions{}, cfg: Config{SignInTimeout: 300 * time.Millisecond}})
		var opened string
		b.client.opener = openerFunc(func(u string) error { opened = u; return errors.New("open " + u + ": exit status 3") })
		_, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{})
		if !errors.Is(err, ErrSignInTimeout) || !strings.Contains(err.Error(), "exit status 3") {
			t.Fatalf("SignIn = %v, want a timeout naming the opener's failure", err)
		}
		if opened == "" || strings.Contains(err.Error(), opened) || strings.Contains(err.Error(), "code_challenge") {
			t.Errorf("the timeout error quotes the authorization URL: %v", err)
		}
	})
}
