package app

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// The engine against the real AS and keyring: it keeps short-lived tokens fresh without replaying a
// refresh token, keeps the keychain holding the pair it serves, leaves nothing behind when a sign-
// in fails, and a restarted engine serves the stored token.

// jwtExpiry reads the exp claim of a JWT access token (the test's own check, not the engine's); the
// zero time when tok is not a readable JWT.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

// TestEngineKeepsTenSecondTokensFreshForTwoMinutes runs the engine against the real AS with a
// 10-second access-token lifetime for two minutes while four callers ask for tokens non-stop: every
// refresh rotates the refresh token, no refresh token is ever replayed (zero invalid_grant, no grant
// revoked), Token never returns an expired token, and the keychain always holds the latest pair.
func TestEngineKeepsTenSecondTokensFreshForTwoMinutes(t *testing.T) {
	if testing.Short() {
		t.Skip("two-minute run")
	}
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 10 * time.Second}})
	const run = 2 * time.Minute
	deadline := time.Now().Add(run)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		calls   int
		oldest  = time.Duration(1<<63 - 1) // the least validity left on any token handed out
		expired []string
	)
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				tok, err := b.eng.Token(context.Background(), "bench")
				now := time.Now()
				mu.Lock()
				calls++
				if err != nil {
					expired = append(expired, "error: "+err.Error())
				} else if exp := jwtExpiry(tok); exp.IsZero() {
					expired = append(expired, "not a JWT")
				} else if left := exp.Sub(now); left <= 0 {
					expired = append(expired, "expired token handed out")
				} else if left < oldest {
					oldest = left
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if len(expired) > 0 {
		t.Fatalf("%d of %d Token calls failed or returned an expired token; first: %s", len(expired), calls, expired[0])
	}
	refreshes := b.as.TokenRequests(t, "refresh_token")
	events := b.as.Events(t)
	rotated := countPrefix(events, "refresh_token.rotated")
	t.Logf("%d Token calls, %d refreshes, %d rotations; least validity left on a token handed out: %v",
		calls, refreshes, rotated, oldest.Round(time.Millisecond))
	// Half-life of a 10 s token (±10%) over two minutes: about 24 refreshes.
	if refreshes < 18 || refreshes > 30 {
		t.Errorf("%d refreshes in %v with 10 s tokens, want about 24", refreshes, run)
	}
	if rotated != refreshes {
		t.Errorf("%d rotations for %d refreshes: every refresh must rotate", rotated, refreshes)
	}
	if n := countPrefix(events, "refresh_token.reused") + countPrefix(events, "grant.revoked"); n != 0 {
		t.Errorf("a refresh token was replayed (%d reuse/revocation events): %v", n, events)
	}

	// Fifty concurrent forced refreshes make one token request.
	before := b.as.TokenRequests(t, "refresh_token")
	var fwg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		fwg.Go(func() { errs <- b.eng.Refresh(context.Background(), "bench", "test") })
	}
	fwg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := b.as.TokenRequests(t, "refresh_token") - before; n != 1 {
		t.Errorf("50 concurrent forced refreshes made %d token requests, want 1", n)
	}

	// The keychain holds the pair the engine serves.
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ks.Get("bench")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := b.eng.Token(context.Background(), "bench")
	if rec.AccessToken != tok || rec.Binding.Resource != b.srv.URL || rec.Binding.TokenEndpoint == "" {
		t.Errorf("keychain record does not match what the engine serves: %v", rec)
	}

	// The audit log has the timeline, one line per refresh, without token material.
	f, err := os.Open(filepath.Join(b.paths.StateDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var refreshed int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), rec.AccessToken) || strings.Contains(sc.Text(), rec.RefreshToken) {
			t.Fatal("the audit log contains token material")
		}
		var ev engine.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind == engine.EventRefreshed || ev.Kind == engine.EventDeadlineRefresh {
			refreshed++
		}
	}
	if refreshed != refreshes+1 {
		t.Errorf("audit log has %d refreshes, the AS saw %d", refreshed, refreshes+1)
	}
	if out := os.Getenv("AUTHKEEPER_ARTIFACTS"); out != "" {
		data, _ := os.ReadFile(filepath.Join(b.paths.StateDir, "audit.jsonl"))
		_ = os.WriteFile(filepath.Join(out, "engine-two-minute-audit.jsonl"), data, 0o644)
	}
}

// TestEngineAddThatFailsSignInLeavesNothingBehind: a refused consent leaves no settings entry and no
// keychain record.
func TestEngineAddThatFailsSignInLeavesNothingBehind(t *testing.T) {
	b := newBench(t, benchOptions{})
	other := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: b.as.Issuer, RequiredScopes: []string{"mcp:read"}})
	b.browser.SetOptions(testbed.BrowserOptions{Deny: true})
	err := b.eng.Add(context.Background(), engine.AddRequest{Name: "denied", URL: other.URL})
	if err == nil {
		t.Fatal("add succeeded although the user denied consent")
	}
	if _, err := b.eng.Server("denied"); !errors.Is(err, engine.ErrUnknownServer) {
		t.Errorf("a server whose sign-in failed is configured: %v", err)
	}
	ks, _ := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if _, err := ks.Get("denied"); !errors.Is(err, keychain.ErrNotFound) {
		t.Errorf("keychain holds a record for a failed add: %v", err)
	}
	data, _ := os.ReadFile(b.paths.ConfigFile())
	if strings.Contains(string(data), "denied") {
		t.Errorf("config file names the failed server:\n%s", data)
	}
}

// TestEngineRestartLoadsCredentialsFromTheKeychain: a second engine (after the first closed) serves
// the stored token without a sign-in, and the first's owner lock was released.
func TestEngineRestartLoadsCredentialsFromTheKeychain(t *testing.T) {
	b := newBench(t, benchOptions{})
	tok1, err := b.eng.Token(context.Background(), "bench")
	if err != nil {
		t.Fatal(err)
	}
	second, err := newEngine(engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Opener: b.browser})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(context.Background()); !errors.Is(err, engine.ErrNotOwner) {
		t.Fatalf("second engine while the first runs: %v, want ErrNotOwner", err)
	}
	b.eng.Close()
	if err := second.Start(context.Background()); err != nil {
		t.Fatalf("second engine after the first closed: %v", err)
	}
	defer second.Close()
	tok2, err := second.Token(context.Background(), "bench")
	if err != nil || tok2 != tok1 {
		t.Fatalf("restarted engine serves %v (err %v), want the stored token", tok2 != tok1, err)
	}
	if n := len(b.browser.Opened()); n != 1 {
		t.Errorf("browser opened %d times, want 1 (no sign-in after restart)", n)
	}
}
