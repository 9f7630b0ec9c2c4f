//go:build soak

package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// soakDuration is the main run's length: $AUTHKEEPER_SOAK_DURATION, default ten minutes.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("AUTHKEEPER_SOAK_DURATION")
	if v == "" {
		return 10 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 30*time.Second {
		t.Fatalf("AUTHKEEPER_SOAK_DURATION=%q: want a duration of at least 30s", v)
	}
	return d
}

// TestSoak is `make soak`: the compressed six-hour run, then the chaos and security cases. It writes
// the report to $AUTHKEEPER_SOAK_REPORT (a directory) and fails if any pass rule fails.
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	r := &report{started: time.Now()}
	defer r.write(t, os.Getenv("AUTHKEEPER_SOAK_REPORT"), d)
	r.run(t, "soak", "main",
		"zero auth failures, zero invalid_grant (no refresh-token reuse, no grant revoked), zero expired tokens "+
			"served (every whoami token had validity left, and no MCP server answered 401), zero tokens in any output",
		func(t *testing.T, c *caseResult) { mainSoak(t, c, d) })
	chaosCases(t, r)
	securityCases(t, r)
	fleetCases(t, r)
}

// tokenSet collects every token seen during a case (see e2e.Secrets).
type tokenSet struct{ e2e.Secrets }

// sample adds the tokens the keyring holds for servers and the access tokens the headers helper prints.
func (s *tokenSet) sample(e *install, servers []string) {
	if ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{Timeout: 5 * time.Second}); err == nil {
		for _, name := range servers {
			if rec, err := ks.Get(name); err == nil {
				s.Add(rec.AccessToken, rec.RefreshToken)
			}
		}
	}
	for _, name := range servers {
		s.Add(e.headersToken(name))
	}
}

// sampleEvery samples until ctx ends.
func (s *tokenSet) sampleEvery(ctx context.Context, e *install, servers []string, every time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			s.sample(e, servers)
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
	})
	return &wg
}

// leaks searches every output of the installation, every file under its directories and the extra
// texts for every token in s, and returns where each hit was (never the token).
func (s *tokenSet) leaks(e *install, extra map[string]string) []string {
	texts := map[string]string{"authkeeper serve and CLI output": e.outputsText()}
	for p, data := range e.files() {
		texts[p] = data
	}
	for k, v := range extra {
		texts[k] = v
	}
	var hits []string
	tokens := s.List()
	for where, text := range texts {
		for _, tok := range tokens {
			if strings.Contains(text, tok) {
				hits = append(hits, where)
				break
			}
		}
	}
	sort.Strings(hits)
	return hits
}

// serverDef is one server of a setup: an MCP server of the bench with its oidc-provider AS, or (worker
// set) Cloudflare's workers-oauth-provider under workerd, which is both.
type serverDef struct {
	name   string
	as     *testbed.AuthServer
	srv    *testbed.MCPServer
	worker *testbed.WorkerAS
}

// newEntraServer starts an AS with the Entra ID profile (pre-registered public client, no PKCE
// advertised, resource refused, scope required on every refresh, the {tenantid} issuer template) and
// a Go SDK server behind it, and adds it to e as name the way docs/providers.md tells a user to.
func newEntraServer(t *testing.T, e *install, name string, ttl time.Duration) serverDef {
	t.Helper()
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileEntra, AccessTokenTTL: ttl})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, AdvertiseAS: as.AdvertisedIssuer})
	as.SetResource(t, srv.URL)
	e.add(name, srv.URL, "--client-id", as.Clients[0].ID, "--scope", as.AppScope+" offline_access", "--assume-pkce")
	return serverDef{name: name, as: as, srv: srv}
}

// newWorkerServer starts the current workers-oauth-provider (60 s access tokens, its minimum; rotating
// refresh tokens) and adds it to e as name.
func newWorkerServer(t *testing.T, e *install, name string) serverDef {
	t.Helper()
	w := testbed.NewWorkerAS(t, testbed.WorkerOptions{Version: testbed.WorkerCurrent})
	e.add(name, w.MCPURL)
	return serverDef{name: name, worker: w}
}

// newServer starts an AS and an MCP server for it (TS when ts), and adds it to e as name.
func newServer(t *testing.T, e *install, name string, asOpts testbed.AuthServerOptions, ts, jsonResp bool) serverDef {
	t.Helper()
	as := testbed.NewAuthServer(t, asOpts)
	mo := testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"}, JSONResponse: jsonResp, Opaque: asOpts.Opaque}
	if mo.Opaque {
		mo.IntrospectionClientID, mo.IntrospectionClientSecret = as.IntrospectionClient()
	}
	var srv *testbed.MCPServer
	if ts {
		srv = testbed.TSMCPServer(t, mo)
	} else {
		srv = testbed.GoMCPServer(t, mo)
	}
	e.add(name, srv.URL)
	return serverDef{name: name, as: as, srv: srv}
}

// busyDriver takes and releases busy leases at random until ctx ends, through the control API and
// now and then through `authkeeper busy`, and counts what it did.
func busyDriver(ctx context.Context, e *install, rng *rand.Rand) (started, ended, errs *int) {
	started, ended, errs = new(int), new(int), new(int)
	ids := []string{"turn-a", "turn-b", "turn-c"}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(500+rng.IntN(3500)) * time.Millisecond):
		}
		id := ids[rng.IntN(len(ids))]
		cli := rng.IntN(4) == 0
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		var err error
		if rng.IntN(100) < 55 {
			ttl := time.Duration(5+rng.IntN(40)) * time.Second
			if cli {
				if code, _, errOut := e.cli(cctx, "busy", "start", "--id", id, "--ttl", ttl.String(), "--label", "soak "+id); code != 0 {
					err = fmt.Errorf("busy start: %s", errOut)
				}
			} else {
				_, err = e.remote.BusyStart(cctx, id, "soak "+id, ttl)
			}
			if err == nil {
				*started++
			}
		} else {
			if cli {
				if code, _, errOut := e.cli(cctx, "busy", "end", "--id", id); code != 0 {
					err = fmt.Errorf("busy end: %s", errOut)
				}
			} else {
				_, err = e.remote.BusyEnd(cctx, id)
			}
			if err == nil {
				*ended++
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			*errs++
		}
	}
	return
}

func mainSoak(t *testing.T, c *caseResult, d time.Duration) {
	e := newEngine(t)
	ttl := 15 * time.Second
	servers := []serverDef{
		newServer(t, e, "alpha", testbed.AuthServerOptions{AccessTokenTTL: ttl}, false, false),
		newServer(t, e, "beta", testbed.AuthServerOptions{AccessTokenTTL: ttl}, true, false),
		newServer(t, e, "gamma", testbed.AuthServerOptions{AccessTokenTTL: ttl, NoRotation: true}, false, true),
		newEntraServer(t, e, "delta", ttl),
		newWorkerServer(t, e, "epsilon"),
	}
	names := []string{"alpha", "beta", "gamma", "delta", "epsilon"}
	c.figure("servers", "alpha: Go SDK server (SSE), rotating refresh tokens with reuse detection; "+
		"beta: TypeScript SDK server (SSE), rotating; gamma: Go SDK server (JSON responses), no rotation; "+
		"delta: Go SDK server (SSE) behind the Entra ID profile (pre-registered client, PKCE assumed, resource "+
		"omitted, scope on every refresh, tenant-template issuer); access tokens of 15 s on these four; "+
		"epsilon: Cloudflare's workers-oauth-provider (current release) under workerd, its "+
		"own MCP endpoint (echo), 60 s access tokens (its minimum), rotating refresh tokens")
	c.figure("duration", d.String())

	// Each server answered the sign-in's discovery probe with a 401: count only what comes after.
	baseline := map[string]testbed.MCPStats{}
	for _, s := range servers {
		if s.srv != nil {
			baseline[s.name] = s.srv.Stats(t)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tokens := &tokenSet{}
	sampling := tokens.sampleEvery(ctx, e, names, 2*time.Second)

	goTally, tsTally := newTally(false), newTally(false)
	var ts []*tsAgent
	for _, name := range []string{"alpha", "beta", "gamma", "alpha"} {
		ts = append(ts, startTS(t, e, name, d, 200*time.Millisecond))
	}
	var agents sync.WaitGroup
	for _, name := range []string{"alpha", "beta", "gamma", "beta", "delta", "epsilon"} {
		a := connectGo(t, name, e.endpoint(name))
		if name == "epsilon" {
			a.tools = []string{"echo"} // the worker's MCP endpoint has only echo
		}
		agents.Go(func() { a.loop(ctx, goTally, 150*time.Millisecond) })
	}
	var started, ended, busyErrs *int
	var busy sync.WaitGroup
	busy.Go(func() {
		started, ended, busyErrs = busyDriver(ctx, e, rand.New(rand.NewPCG(8, uint64(time.Now().UnixNano()))))
	})

	agents.Wait()
	busy.Wait()
	sessions := 0
	for _, a := range ts {
		a.wait(t, 2*time.Minute)
		sessions += a.record(tsTally)
	}
	sampling.Wait()
	tokens.sample(e, names)

	// Figures.
	all := newTally(false)
	all.merge(goTally)
	all.merge(tsTally)
	c.figure("tool_calls", map[string]int{"total": all.calls, "go_sdk_via_proxy": goTally.calls, "ts_sdk_via_bridge": tsTally.calls})
	c.figure("tool_calls_by_agent", all.byAgent)
	c.figure("failures_by_cause", all.failures)
	c.figure("ts_sessions_opened", sessions)
	evs := e.audit()
	refreshed, deadline := countKind(evs, engine.EventRefreshed, ""), countKind(evs, engine.EventDeadlineRefresh, "")
	c.figure("refreshes_audit", map[string]int{"refreshed": refreshed, "deadline_refresh": deadline, "total": refreshed + deadline})
	c.figure("deferred_refreshes", countKind(evs, engine.EventDeferred, ""))
	c.figure("deadline_refreshes", deadline)
	c.figure("degraded_events", countKind(evs, engine.EventDegraded, ""))
	asRefresh, invalidGrant, rejected := 0, 0, 0
	perServer := map[string]map[string]int{}
	for _, s := range servers {
		if s.worker != nil {
			// The worker keeps no statistics: its refreshes come from authkeeper's audit log, and a
			// refused refresh (its invalid_grant) would show as needs-sign-in there.
			ig := countKind(evs, engine.EventNeedsSignIn, s.name) + countKind(evs, engine.EventRevoked, s.name)
			invalidGrant += ig
			perServer[s.name] = map[string]int{"refreshed_audit": countKind(evs, engine.EventRefreshed, s.name) +
				countKind(evs, engine.EventDeadlineRefresh, s.name), "invalid_grant": ig}
			continue
		}
		st := s.as.Stats(t)
		asRefresh += st.TokenRequests["refresh_token"]
		ig := countPrefix(st.Events, "refresh_token.reused") + countPrefix(st.Events, "grant.revoked")
		invalidGrant += ig
		ms := s.srv.Stats(t)
		ms.Requests -= baseline[s.name].Requests
		ms.Unauthorized -= baseline[s.name].Unauthorized
		ms.Forbidden -= baseline[s.name].Forbidden
		rejected += ms.Unauthorized + ms.Forbidden
		perServer[s.name] = map[string]int{"as_refresh_requests": st.TokenRequests["refresh_token"], "invalid_grant": ig,
			"mcp_requests": ms.Requests, "mcp_401": ms.Unauthorized, "mcp_403": ms.Forbidden}
	}
	c.figure("per_server", perServer)
	c.figure("as_refresh_requests", asRefresh)
	c.figure("invalid_grant", invalidGrant)
	c.figure("tokens_rejected_by_servers", rejected)
	c.figure("whoami_calls", all.whoamis)
	if all.whoamis > 0 {
		c.figure("least_validity_left_on_a_token_served_s", all.minLeft.Round(time.Millisecond).Seconds())
	}
	c.figure("expired_tokens_served", all.expired+rejected)
	c.figure("busy_leases", map[string]int{"started": *started, "ended": *ended, "errors": *busyErrs})
	toks := tokens.List()
	c.figure("tokens_collected", len(toks))
	extra := map[string]string{"client error messages": strings.Join(append(goTally.messages, tsTally.messages...), "\n")}
	for i, a := range ts {
		extra[fmt.Sprintf("ts client %d output (incl. bridge stderr)", i)] = a.proc.Output()
	}
	hits := tokens.leaks(e, extra)
	c.figure("token_leak_hits", len(hits))

	// Pass rule.
	auth := 0
	for cause, n := range all.failures {
		if strings.HasPrefix(cause, "auth_failure/") {
			auth += n
		}
	}
	c.check(t, all.calls > 0, "no tool calls were made")
	c.check(t, auth == 0, "%d auth failures: %v", auth, all.failures)
	c.check(t, invalidGrant == 0, "%d invalid_grant (reuse or grant revoked) events", invalidGrant)
	c.check(t, all.expired == 0, "%d whoami answers saw an expired token", all.expired)
	c.check(t, rejected == 0, "MCP servers rejected %d requests (401/403)", rejected)
	c.check(t, all.whoamis > 0 && all.minLeft > 0, "least validity left on a served token: %v", all.minLeft)
	c.check(t, len(hits) == 0, "tokens found in: %v", hits)
	c.check(t, sessions == len(ts), "TS clients opened %d sessions, want %d (one each)", sessions, len(ts))
	if n := all.failed(); n > 0 {
		t.Logf("non-auth failures (reported, not part of the pass rule): %v", all.failures)
	}
}
