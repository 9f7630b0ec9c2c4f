//go:build !headless

package tray

import (
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"fyne.io/fyne/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/authkeeper/authkeeper/app/engine"
)

// TestRefreshNoticesCoalesceWithinTenSeconds runs the coalescer on fake time: one refresh is announced
// once its 10 s window closes, a burst inside one window becomes a single notice naming everyone, and
// a refresh after the window opens a new one.
func TestRefreshNoticesCoalesceWithinTenSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent []string
		ch := make(chan string, 10)
		c := newCoalescer(engine.SystemClock{}, coalesceWindow, func(n notice) { ch <- n.Title })
		step := func(d time.Duration) {
			time.Sleep(d) // fake time inside the bubble
			synctest.Wait()
			for len(ch) > 0 {
				sent = append(sent, <-ch)
			}
		}

		c.add("github")
		step(9 * time.Second)
		if len(sent) != 0 {
			t.Fatalf("sent %q before the window closed", sent)
		}
		step(time.Second)
		if diff := cmp.Diff([]string{"Refreshed auth for github"}, sent); diff != "" {
			t.Fatalf("single refresh (-want +got):\n%s", diff)
		}

		sent = nil
		for _, s := range []string{"linear", "jira", "linear", "notion", "sentry"} {
			c.add(s)
			step(2 * time.Second)
		}
		step(10 * time.Second)
		if diff := cmp.Diff([]string{"Refreshed auth for linear, jira and 2 more"}, sent); diff != "" {
			t.Errorf("burst (-want +got):\n%s", diff)
		}

		sent = nil
		c.add("x")
		c.stop()
		step(time.Minute)
		if len(sent) != 0 {
			t.Errorf("stopped coalescer sent %q", sent)
		}
	})
}

// TestNoticesOfferSignInExactlyWhenTheServerNeedsTheUser pins the event → notice mapping: "needs you
// to sign in again" and "revoked access" carry the Sign in action for their server and are not
// routine; "Signed in" carries none. Their text points at the button where the daemon shows actions
// and at the menu item where it does not.
func TestNoticesOfferSignInExactlyWhenTheServerNeedsTheUser(t *testing.T) {
	tests := []struct {
		ev                        engine.Event
		want                      notice
		ok                        bool
		withButton, withoutButton string
	}{
		{engine.Event{Kind: engine.EventNeedsSignIn, Server: "gh", Message: "invalid_grant"},
			notice{Title: "gh needs you to sign in again", Body: "invalid_grant", Action: actSignIn, Server: "gh"}, true,
			"Click “Sign in” to sign in again. invalid_grant",
			"Choose “Sign in again” under gh in the authkeeper menu. invalid_grant"},
		{engine.Event{Kind: engine.EventRevoked, Server: "gh"},
			notice{Title: "gh: the server revoked access", Action: actSignIn, Server: "gh"}, true,
			"Click “Sign in” to sign in again.",
			"Choose “Sign in again” under gh in the authkeeper menu."},
		{engine.Event{Kind: engine.EventSignedIn, Server: "gh"},
			notice{Title: "Signed in to gh", Body: "Agents using gh carry on.", Routine: true}, true,
			"Agents using gh carry on.", "Agents using gh carry on."},
		{engine.Event{Kind: engine.EventRefreshed, Server: "gh"}, notice{}, false, "", ""}, // the coalescer's
		{engine.Event{Kind: engine.EventBusyChanged}, notice{}, false, "", ""},
		{engine.Event{Kind: engine.EventDegraded, Server: "gh"}, notice{}, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.ev.Kind), func(t *testing.T) {
			got, ok := noticeFor(tt.ev)
			if ok != tt.ok {
				t.Fatalf("noticeFor ok = %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("notice (-want +got):\n%s", diff)
			}
			if s := got.text(true); s != tt.withButton {
				t.Errorf("text with a button %q, want %q", s, tt.withButton)
			}
			if s := got.text(false); s != tt.withoutButton {
				t.Errorf("text without buttons %q, want %q", s, tt.withoutButton)
			}
		})
	}
	if n := refreshNotice([]string{"gh"}); n.Action != actNone {
		t.Errorf("refresh notice carries action %v", n.Action)
	}
}

// daemonFunc is a notification daemon as the tray sees it.
type daemonFunc func(notice)

func (f daemonFunc) deliver(n notice) { f(n) }
func (daemonFunc) settle(string)      {}
func (daemonFunc) close()             {}

// TestNotificationsNeverWaitForAHungDaemon: while the daemon does not answer, sending returns at once;
// notifyQueue notifications wait and later ones are dropped (counted); quitting waits for the daemon
// only up to its limit; once the daemon answers, the queued ones arrive in order.
func TestNotificationsNeverWaitForAHungDaemon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var got []string
		s := newSender(daemonFunc(func(n notice) {
			<-release
			mu.Lock()
			got = append(got, n.Title)
			mu.Unlock()
		}))
		s.send(fyne.NewNotification("0", ""))
		synctest.Wait() // the daemon has the first one and hangs
		for i := 1; i < notifyQueue+5; i++ {
			s.send(fyne.NewNotification(strconv.Itoa(i), "")) // must not block: the test would deadlock
		}
		if n := s.dropped.Load(); n != 4 {
			t.Errorf("%d dropped, want 4 (one in flight, %d queued)", n, notifyQueue)
		}
		start := time.Now()
		s.stop(2 * time.Second)
		if waited := time.Since(start); waited != 2*time.Second {
			t.Errorf("stop waited %v for a hung daemon, want its 2s limit", waited)
		}
		s.send(fyne.NewNotification("late", "")) // after stop: dropped, no panic
		close(release)
		synctest.Wait()
		want := make([]string, notifyQueue+1)
		for i := range want {
			want[i] = strconv.Itoa(i)
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}
	})
}
