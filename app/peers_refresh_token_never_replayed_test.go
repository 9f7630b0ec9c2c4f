package app

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// startServeProcess runs the real binary's `serve` in this process's environment and waits until its
// control API answers.
func startServeProcess(t *testing.T, bin, name string, paths engine.Paths) (*testbed.Process, *control.Remote) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "AUTHKEEPER_PROXY_ADDR=127.0.0.1:0")
	p := testbed.StartProcess(t, name, cmd)
	p.WaitLine(t, "  control: ", 60*time.Second)
	return p, control.NewRemote(engine.OwnerSocket(paths))
}

// TestSIGKILLMidRefreshNeverReplaysTheSpentRefreshToken runs the real binary as the owner, holds a
// refresh at the real AS (oidc-provider, rotating refresh tokens with reuse detection) and kills the
// process with SIGKILL while the AS still has it; the AS then rotates the grant, and the answer is
// lost with the process. The restarted binary must not send the stored refresh token again (the AS
// sees no reuse and revokes nothing), must keep serving the still-valid access token — which the MCP
// server, introspecting every request, still accepts — and must ask for a sign-in exactly once.
func TestSIGKILLMidRefreshNeverReplaysTheSpentRefreshToken(t *testing.T) {
	bin := e2e.MustBinary(t) // before newBench moves HOME
	b := newBench(t, benchOptions{Home: true, AS: testbed.AuthServerOptions{AccessTokenTTL: 5 * time.Minute, Opaque: true}})
	b.eng.Close()

	first, r := startServeProcess(t, bin, "authkeeper serve (run 1)", b.paths)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before, err := r.Token(ctx, "bench")
	if err != nil {
		t.Fatal(err)
	}
	stats := b.as.Stats(t)
	tokenRequests, rotated := stats.Requests["token"], countPrefix(stats.Events, "refresh_token.rotated")
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Delay: 4 * time.Second})
	go func() { _ = r.Refresh(ctx, "bench") }() // dies with the process
	deadline := time.Now().Add(20 * time.Second)
	for b.as.Stats(t).Requests["token"] == tokenRequests {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never reached the AS")
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
	time.Sleep(500 * time.Millisecond)
	first.Kill()
	// The AS completes the held refresh: the grant rotates, and its answer is lost.
	for countPrefix(b.as.Events(t), "refresh_token.rotated") == rotated {
		if time.Now().After(deadline) {
			t.Fatal("the AS never rotated the refresh token: the kill did not land mid-refresh")
		}
		time.Sleep(100 * time.Millisecond)
	}
	refreshes := b.as.TokenRequests(t, "refresh_token")

	second, r := startServeProcess(t, bin, "authkeeper serve (run 2)", b.paths)
	got, err := r.Token(ctx, "bench")
	if err != nil || got.AccessToken != before.AccessToken {
		t.Fatalf("after the restart Token = same %t, %v; want the stored, still valid access token", got.AccessToken == before.AccessToken, err)
	}
	s, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Servers[0]; st.State != engine.StateNeedsSignIn || st.Cause != engine.CauseRefreshInterrupted || !strings.Contains(st.Message, "refresh was in flight") {
		t.Errorf("status %s/%s %q, want needs-sign-in saying a refresh was interrupted", st.State, st.Cause, st.Message)
	}
	info, err := r.Proxy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: info.URL + "/" + info.Key + "/mcp/bench"}, nil)
	if err != nil {
		t.Fatalf("connect through the restarted proxy: %v", err)
	}
	defer cs.Close()
	for i := range 3 {
		if out, err := proxyEcho(ctx, cs, "still served"); err != nil || out != "still served" {
			t.Fatalf("call %d with the still-valid access token: %q, %v", i, out, err)
		}
	}
	if err := r.Refresh(ctx, "bench"); err == nil {
		t.Error("a forced refresh after the interrupted one was sent")
	}
	events := b.as.Events(t)
	if n := countPrefix(events, "refresh_token.reused") + countPrefix(events, "grant.revoked"); n != 0 {
		t.Errorf("the AS saw the spent refresh token again (%d reuse/revocation events): %v", n, events)
	}
	if n := b.as.TokenRequests(t, "refresh_token") - refreshes; n != 0 {
		t.Errorf("%d refresh requests after the restart, want 0", n)
	}
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := auditKinds(t, b.paths, engine.EventNeedsSignIn, "bench"); n != 1 {
		t.Errorf("%d needs_sign_in events in the audit log, want exactly 1", n)
	}
	assertNoSecrets(t, "serve output", first.Output()+second.Output(), before.AccessToken)
}

// TestEngineNeverResendsARefreshTokenWhoseAnswerTimedOut: inside one running engine, a refresh at the
// real AS (oidc-provider: rotating refresh tokens, reuse detection) outlives the engine's request
// timeout; the AS rotates the grant after the engine gave up. The engine must not send the refresh
// token again — the AS would take it for a replay and revoke the grant — but keep serving the
// still-valid access token, announce one needs-sign-in, and be brought back by one sign-in.
func TestEngineNeverResendsARefreshTokenWhoseAnswerTimedOut(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 10 * time.Minute}})
	b.eng.Close()
	eng, err := newEngine(engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Opener: b.browser,
		HTTPClient: &http.Client{Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	_, events, cancel := eng.Subscribe()
	defer cancel()
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	before, err := eng.Token(ctx, "bench")
	if err != nil {
		t.Fatal(err)
	}
	refreshes, rotated := b.as.TokenRequests(t, "refresh_token"), countPrefix(b.as.Events(t), "refresh_token.rotated")
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Delay: 5 * time.Second})
	if err := eng.Refresh(ctx, "bench", "user"); err == nil {
		t.Fatal("a refresh held past the request timeout succeeded")
	}
	ev := waitEvent(t, events, engine.EventNeedsSignIn, 5*time.Second)
	if ev.Outcome != engine.Outcome(engine.CauseRefreshInterrupted) {
		t.Errorf("needs_sign_in outcome %q, want %q", ev.Outcome, engine.CauseRefreshInterrupted)
	}
	deadline := time.Now().Add(20 * time.Second)
	for countPrefix(b.as.Events(t), "refresh_token.rotated") == rotated {
		if time.Now().After(deadline) {
			t.Fatal("the AS never completed the held refresh")
		}
		time.Sleep(100 * time.Millisecond) // polling another process
	}
	st := eng.Snapshot().Servers[0]
	if st.State != engine.StateNeedsSignIn || st.Cause != engine.CauseRefreshInterrupted || !strings.Contains(st.Message, "got no answer") {
		t.Errorf("status %s/%s %q, want needs-sign-in saying the refresh got no answer", st.State, st.Cause, st.Message)
	}
	if err := eng.Refresh(ctx, "bench", "user"); !errors.Is(err, engine.ErrNeedsSignIn) {
		t.Errorf("a second refresh = %v, want ErrNeedsSignIn without a request", err)
	}
	if got, err := eng.Token(ctx, "bench"); err != nil || got != before {
		t.Errorf("Token = same %t, %v; want the still-valid access token", got == before, err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: eng.ProxyEndpoint("bench")}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	defer cs.Close()
	if out, err := proxyEcho(ctx, cs, "still served"); err != nil || out != "still served" {
		t.Errorf("call with the still-valid access token: %q, %v", out, err)
	}
	events2 := b.as.Events(t)
	if n := countPrefix(events2, "refresh_token.reused") + countPrefix(events2, "grant.revoked"); n != 0 {
		t.Errorf("the AS saw the rotated refresh token again (%d reuse/revocation events)", n)
	}
	if n := b.as.TokenRequests(t, "refresh_token") - refreshes; n != 1 {
		t.Errorf("%d refresh requests, want the one that timed out", n)
	}
	if err := eng.SignIn(ctx, "bench", false, nil); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if st := eng.Snapshot().Servers[0]; st.State != engine.StateFresh {
		t.Errorf("after the sign-in: %s, want fresh", st.State)
	}
	if out, err := proxyEcho(ctx, cs, "after sign-in"); err != nil || out != "after sign-in" {
		t.Errorf("call after the sign-in: %q, %v", out, err)
	}
}
