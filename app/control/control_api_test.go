package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// The control API's server and its client, Remote, over the real unix socket (on Windows the real
// named pipe) of a real engine (with the file store: no keychain, no authorization server is needed to
// pin the wire contract).

func startOwner(t *testing.T) (*engine.Engine, *Remote) {
	t.Helper()
	return startOwnerAt(t, newPaths(t))
}

// newPaths are new directories for an engine, removed after the test.
func newPaths(t *testing.T) engine.Paths {
	t.Helper()
	home := testbed.TempDir(t)
	return engine.Paths{ConfigDir: filepath.Join(home, "config"), StateDir: filepath.Join(home, "state"), RuntimeDir: runtimeDir(t)}
}

// startOwnerAt starts an engine with paths, serving the control API, until the test ends.
func startOwnerAt(t *testing.T, paths engine.Paths) (*engine.Engine, *Remote) {
	t.Helper()
	eng, err := engine.New(engine.Config{Paths: paths, StoreKind: "file", NoProxy: true, Control: FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng, NewRemote(eng.ControlAddr())
}

// runtimeDir is a new runtime directory, removed after the test. On Unix it is short, under /tmp,
// because it holds the control socket and a socket's path is limited to about 100 bytes; on Windows
// the pipe's name does not depend on its length.
func runtimeDir(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		return testbed.TempDir(t)
	}
	rt, err := os.MkdirTemp("/tmp", "akctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	return rt
}

// TestRemoteErrorsCarryTheServersCodeAndMatchTheEnginesSentinels: every failed call comes back as a
// RemoteError whose Code is one of the shared constants and which errors.Is matches against the
// engine's sentinel, so that callers in another process branch exactly as callers of the engine do.
func TestRemoteErrorsCarryTheServersCodeAndMatchTheEnginesSentinels(t *testing.T) {
	_, r := startOwner(t)
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		call     func() error
		status   int
		code     Code
		sentinel error
	}{
		{"refresh an unknown server", func() error { return r.Refresh(ctx, "nope") }, http.StatusNotFound, CodeUnknownServer, engine.ErrUnknownServer},
		{"token of an unknown server", func() error { _, err := r.Token(ctx, "nope"); return err }, http.StatusNotFound, CodeUnknownServer, engine.ErrUnknownServer},
		{"log out of an unknown server", func() error { return r.Logout(ctx, "nope") }, http.StatusNotFound, CodeUnknownServer, engine.ErrUnknownServer},
		{"hand-over asked of the app", func() error { return r.Handover(ctx) }, http.StatusConflict, CodeNotTemporary, nil},
		{"a lease without an id", func() error { _, err := r.BusyStart(ctx, "", "x", time.Minute); return err }, http.StatusBadRequest, CodeBadRequest, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var re *RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T), want a *RemoteError", err, err)
			}
			if re.Status != c.status || re.Code != c.code || re.Message == "" {
				t.Errorf("RemoteError{%d %q %q}, want status %d code %q and a message", re.Status, re.Code, re.Message, c.status, c.code)
			}
			if c.sentinel != nil && !errors.Is(err, c.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, c.sentinel)
			}
			for _, other := range []error{engine.ErrUnknownServer, engine.ErrServerExists, engine.ErrNeedsSignIn} {
				if other != c.sentinel && errors.Is(err, other) {
					t.Errorf("errors.Is(%v, %v) = true", err, other)
				}
			}
		})
	}
}

// TestRemoteBusyLeasesAndShowRoundTripTheirNamedBodies: a lease taken through Remote is the engine's
// lease (id, label, TTL), listed in the status, and ended once; Show reports whether a window answered.
func TestRemoteBusyLeasesAndShowRoundTripTheirNamedBodies(t *testing.T) {
	eng, r := startOwner(t)
	ctx := context.Background()
	l, err := r.BusyStart(ctx, "turn-1", "refactor", 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l.ID != "turn-1" || l.Label != "refactor" || l.TTL != 90*time.Second {
		t.Errorf("lease %+v, want turn-1/refactor/90s", l)
	}
	if got := eng.Busy().Leases(); len(got) != 1 || got[0].ID != "turn-1" {
		t.Errorf("engine leases %+v, want turn-1", got)
	}
	snap, err := r.Status(ctx)
	if err != nil || len(snap.Leases) != 1 || snap.Leases[0].Label != "refactor" {
		t.Errorf("status leases %+v, %v; want turn-1", snap.Leases, err)
	}
	for i, want := range []bool{true, false} {
		if ended, err := r.BusyEnd(ctx, "turn-1"); err != nil || ended != want {
			t.Errorf("BusyEnd #%d = %v, %v; want %v", i+1, ended, err, want)
		}
	}

	if shown, err := r.Show(ctx); err != nil || shown {
		t.Errorf("Show without a window = %v, %v; want false", shown, err)
	}
	called := make(chan struct{}, 1)
	eng.SetShowHandler(func() { called <- struct{}{} })
	if shown, err := r.Show(ctx); err != nil || !shown {
		t.Errorf("Show with a window = %v, %v; want true", shown, err)
	}
	select {
	case <-called:
	default:
		t.Error("the show handler did not run")
	}
}

// TestControlAPIRefusesABodyItCannotReadWithBadRequest: a malformed body is answered 400 with the
// bad_request code, and nothing is started.
func TestControlAPIRefusesABodyItCannotReadWithBadRequest(t *testing.T) {
	eng, r := startOwner(t)
	resp, err := r.http.Post("http://authkeeper/v1/busy", "application/json", strings.NewReader(`{"id": 7`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body errorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusBadRequest || body.Code != CodeBadRequest {
		t.Fatalf("answer %d %+v (%v), want 400 %s", resp.StatusCode, body, err, CodeBadRequest)
	}
	if n := len(eng.Busy().Leases()); n != 0 {
		t.Errorf("%d leases after a bad request", n)
	}
}
