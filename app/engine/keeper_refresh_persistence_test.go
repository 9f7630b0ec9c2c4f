package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// How a refresh lands: concurrent callers share one request, the new pair is saved before it is
// handed out (and serves from memory when the save fails, saved later), a sign-in during a refresh
// wins over the late answer, and Close waits for the refresh in flight.

func TestKeeperFiftyConcurrentForceRefreshesMakeOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		gate := r.as.Gate()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() { errs <- r.k.ForceRefresh(context.Background(), "forced") })
		}
		synctest.Wait() // all fifty are waiting on the one request
		gate <- 1
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d token requests for 50 concurrent ForceRefresh calls, want 1", n)
		}
		if r.as.Reused() {
			t.Error("a rotated refresh token was replayed")
		}
	})
}

func TestKeeperNewTokenServesFromMemoryWhenTheSaveFailsAndIsSavedLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 20*time.Second, SystemClock{})
		r.store.failing.Store(true) // the save fails: the pair must still serve, with a warning
		// The keychain cannot record the refresh's start either, so the refresh waits (degraded) until
		// its hard deadline, 2 s before expiry, and then runs anyway: without it the server would stop.
		time.Sleep(18 * time.Second)
		synctest.Wait()
		tok, err := r.k.Token(context.Background())
		if err != nil || tok != "at-1" {
			t.Fatalf("Token = %q, %v; want the new pair from memory", tok, err)
		}
		if r.ev.count(EventWarning) != 1 || r.ev.count(EventDegraded) != 1 {
			t.Errorf("events %v: want one degraded (start not recorded) and one warning for the failed save", r.ev.kinds())
		}
		if _, err := r.store.Get("demo"); !errors.Is(err, keychain.ErrNotFound) {
			t.Fatalf("store has a record although every save failed: %v", err)
		}
		r.store.failing.Store(false)
		time.Sleep(6 * time.Second) // the save is retried after the backoff
		synctest.Wait()
		rec, err := r.store.Get("demo")
		if err != nil || rec.RefreshToken != "rt-1" {
			t.Fatalf("after recovery the store holds %v, %v; want rt-1", rec, err)
		}
	})
}

func TestKeeperNewTokenIsNotHandedOutBeforeItIsPersisted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		hold := make(chan struct{})
		r.store.hold.Store(&hold)
		done := make(chan error, 1)
		go func() { done <- r.k.ForceRefresh(context.Background(), "user") }()
		synctest.Wait() // the refresh got its new pair and is blocked saving it
		if tok, _ := r.k.Token(context.Background()); tok != "at-0" {
			t.Fatalf("Token while the new pair is being saved = %q, want the old at-0", tok)
		}
		close(hold)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if tok, _ := r.k.Token(context.Background()); tok != "at-1" {
			t.Fatalf("Token after the save = %q, want at-1", tok)
		}
	})
}

func TestKeeperSignInDuringARefreshWinsOverTheLateRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		gate := r.as.Gate()
		go r.k.ForceRefresh(context.Background(), "user") //nolint:errcheck // its result is discarded
		synctest.Wait()                                   // the refresh is at the AS
		if err := r.k.Adopt(oauth.Token{AccessToken: "at-signin", RefreshToken: "rt-signin", Expiry: time.Now().Add(time.Hour)}, r.k.Grant()); err != nil {
			t.Fatal(err)
		}
		gate <- 1 // the old refresh completes after the sign-in
		synctest.Wait()
		if tok, _ := r.k.Token(context.Background()); tok != "at-signin" {
			t.Errorf("Token = %q: a late refresh overwrote the sign-in", tok)
		}
		rec, _ := r.store.Get("demo")
		if rec.RefreshToken != "rt-signin" {
			t.Errorf("keychain holds %q: a late refresh overwrote the sign-in", rec.RefreshToken)
		}
	})
}

func TestKeeperCloseWaitsForTheRefreshInFlightAndPersistsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		gate := r.as.Gate()
		go r.k.ForceRefresh(context.Background(), "user") //nolint:errcheck
		synctest.Wait()
		closed := make(chan struct{})
		go func() { r.k.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a refresh was in flight")
		default:
		}
		gate <- 1
		<-closed
		if rec, err := r.store.Get("demo"); err != nil || rec.RefreshToken != "rt-1" {
			t.Fatalf("after Close the keychain holds %v, %v; want the rotated rt-1", rec, err)
		}
	})
}
