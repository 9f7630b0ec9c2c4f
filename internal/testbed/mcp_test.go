package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// mcpImpls are the two bench MCP servers, by SDK.
var mcpImpls = []struct {
	name  string
	start func(testing.TB, MCPServerOptions) *MCPServer
	// insufficientScope says whether the SDK's 403 challenge carries error="insufficient_scope"; the
	// Go SDK's carries only scope= (RFC 6750 §3.1 asks for both), and clients must cope with either.
	insufficientScope bool
}{
	{"Go", GoMCPServer, false},
	{"TS", TSMCPServer, true},
}

func TestMCPServerToolsWorkWithRealClientAndAuthCodeToken(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, impl := range mcpImpls {
		for _, jsonMode := range []bool{true, false} {
			mode := map[bool]string{true: "JSON", false: "SSE"}[jsonMode]
			t.Run(impl.name+"/"+mode, func(t *testing.T) {
				srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer, JSONResponse: jsonMode})
				tok := issueMCPToken(t, as, srv.URL, "mcp:read mcp:write")
				var progress mcpNotes
				cs := mcpConnect(t, srv.URL, tok.AccessToken, &progress)

				tools, err := cs.ListTools(t.Context(), nil)
				if err != nil {
					t.Fatalf("list tools: %v", err)
				}
				var names []string
				for _, tl := range tools.Tools {
					names = append(names, tl.Name)
				}
				slices.Sort(names)
				if diff := cmp.Diff([]string{"add", "countdown", "echo", "slow", "whoami"}, names); diff != "" {
					t.Errorf("tools (-want +got):\n%s", diff)
				}
				for _, c := range []struct {
					tool string
					args map[string]any
					want string
				}{
					{"echo", map[string]any{"text": "héllo"}, "héllo"},
					{"add", map[string]any{"a": 2, "b": 40.5}, "42.5"},
					{"slow", map[string]any{"ms": 50}, "slept 50ms"},
					{"countdown", map[string]any{"n": 2, "interval_ms": 10}, "done"},
				} {
					if got := mcpCall(t, cs, c.tool, c.args); got != c.want {
						t.Errorf("%s(%v) = %q, want %q", c.tool, c.args, got, c.want)
					}
				}

				// Not nil arguments: the Go client sends them as null, which the TS SDK server rejects
				// (-32602, "expected record, received null").
				var who Whoami
				if err := json.Unmarshal([]byte(mcpCall(t, cs, "whoami", map[string]any{})), &who); err != nil {
					t.Fatalf("whoami: %v", err)
				}
				want := Whoami{Subject: tok.subject, ClientID: tok.clientID, Scopes: []string{"mcp:read", "mcp:write"}, ExpiresAt: tok.Expiry.Unix()}
				if diff := cmp.Diff(want, who, cmp.Comparer(func(a, b int64) bool { return a-b <= 2 && b-a <= 2 })); diff != "" {
					t.Errorf("whoami (-want +got):\n%s", diff)
				}
				if st := srv.Stats(t); st.Requests < 5 || st.Unauthorized != 0 || st.Forbidden != 0 {
					t.Errorf("stats = %+v, want ≥5 requests and no rejection", st)
				}
			})
		}
	}
}

func TestMCPServerStreamsCountdownNotificationsAsSent(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	const n, interval = 3, 400 * time.Millisecond
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer})
			tok := issueMCPToken(t, as, srv.URL, "mcp:read")
			var progress mcpNotes
			cs := mcpConnect(t, srv.URL, tok.AccessToken, &progress)
			params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": n, "interval_ms": interval.Milliseconds()}}
			params.SetProgressToken("cd-1")
			if _, err := cs.CallTool(t.Context(), params); err != nil {
				t.Fatalf("countdown: %v", err)
			}
			returned := time.Now()
			// The client runs notification handlers asynchronously, so the last one may still be
			// running when CallTool returns.
			got := progress.wait(t, n)
			var msgs []string
			for _, g := range got {
				msgs = append(msgs, g.msg)
			}
			if diff := cmp.Diff([]string{"countdown 1/3", "countdown 2/3", "countdown 3/3"}, msgs); diff != "" {
				t.Fatalf("progress notifications (-want +got):\n%s", diff)
			}
			// Buffered notifications would arrive together with the result; streamed ones arrive as the
			// server sends them, the first about (n-1)·interval before the result. Assert only a lower
			// bound of one interval, which scheduling delays cannot break.
			if gap := returned.Sub(got[0].at); gap < interval {
				t.Errorf("first notification arrived %v before the result, want ≥ %v (were they buffered?)", gap, interval)
			}
		})
	}
}

func TestMCPServerRejectsRequestsWithoutValidToken(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer})
			other := issueMCPToken(t, as, "http://127.0.0.1:9/elsewhere", "mcp:read")

			for _, c := range []struct{ name, token string }{
				{"no token", ""},
				{"garbage token", "not-a-token"},
				{"token for another resource", other.AccessToken},
			} {
				resp := mcpInitialize(t, srv.URL, c.token)
				if resp.status != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401", c.name, resp.status)
				}
				if !strings.Contains(resp.challenge, fmt.Sprintf("resource_metadata=%q", srv.ResourceMetadataURL)) {
					t.Errorf("%s: WWW-Authenticate %q does not name %s", c.name, resp.challenge, srv.ResourceMetadataURL)
				}
				if c.token != "" && strings.Contains(resp.challenge+resp.body, c.token) {
					t.Errorf("%s: the token is echoed in the response", c.name)
				}
			}
			if st := srv.Stats(t); st.Unauthorized != 3 || st.Requests != 3 {
				t.Errorf("stats = %+v, want 3 requests, 3 unauthorized", st)
			}

			prm, err := oauthex.GetProtectedResourceMetadata(t.Context(), srv.ResourceMetadataURL, srv.URL, http.DefaultClient)
			if err != nil {
				t.Fatalf("protected resource metadata: %v", err)
			}
			if diff := cmp.Diff([]string{as.Issuer}, prm.AuthorizationServers); diff != "" {
				t.Errorf("authorization_servers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMCPServerRejectsExpiredToken(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{AccessTokenTTL: 2 * time.Second})
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer})
			tok := issueMCPToken(t, as, srv.URL, "mcp:read")
			if resp := mcpInitialize(t, srv.URL, tok.AccessToken); resp.status != http.StatusOK {
				t.Fatalf("fresh token: status %d, want 200", resp.status)
			}
			// Real expiry against a real issuer: nothing to inject, so wait it out (exp has 1 s precision).
			time.Sleep(time.Until(tok.Expiry.Add(1100 * time.Millisecond)))
			if resp := mcpInitialize(t, srv.URL, tok.AccessToken); resp.status != http.StatusUnauthorized {
				t.Errorf("expired token: status %d, want 401", resp.status)
			}
		})
	}
}

func TestMCPServerAnswers403ToTokenWithoutRequiredScope(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:admin"}})
			narrow := issueMCPToken(t, as, srv.URL, "mcp:read")
			resp := mcpInitialize(t, srv.URL, narrow.AccessToken)
			if resp.status != http.StatusForbidden {
				t.Errorf("status %d, want 403", resp.status)
			}
			if !strings.Contains(resp.challenge, `scope="mcp:admin"`) {
				t.Errorf("WWW-Authenticate %q lacks scope=\"mcp:admin\"", resp.challenge)
			}
			if got := strings.Contains(resp.challenge, `error="insufficient_scope"`); got != impl.insufficientScope {
				t.Errorf("WWW-Authenticate %q: has error=\"insufficient_scope\" = %v, want %v", resp.challenge, got, impl.insufficientScope)
			}
			if st := srv.Stats(t); st.Forbidden != 1 {
				t.Errorf("stats = %+v, want 1 forbidden", st)
			}
			wide := issueMCPToken(t, as, srv.URL, "mcp:read mcp:admin")
			cs := mcpConnect(t, srv.URL, wide.AccessToken, nil)
			if got := mcpCall(t, cs, "echo", map[string]any{"text": "ok"}); got != "ok" {
				t.Errorf("echo with mcp:admin = %q", got)
			}
		})
	}
}

func TestMCPServerVerifiesOpaqueTokensByIntrospection(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Opaque: true})
	id, secret := as.IntrospectionClient()
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer, Opaque: true, IntrospectionClientID: id, IntrospectionClientSecret: secret})
			tok := issueMCPToken(t, as, srv.URL, "mcp:read")
			if strings.Count(tok.AccessToken, ".") == 2 {
				t.Fatalf("the authorization server issued a JWT, want an opaque token")
			}
			cs := mcpConnect(t, srv.URL, tok.AccessToken, nil)
			if got := mcpCall(t, cs, "add", map[string]any{"a": 1, "b": 2}); got != "3" {
				t.Errorf("add = %q, want 3", got)
			}
			other := issueMCPToken(t, as, "http://127.0.0.1:9/elsewhere", "mcp:read")
			if resp := mcpInitialize(t, srv.URL, other.AccessToken); resp.status != http.StatusUnauthorized {
				t.Errorf("opaque token for another resource: status %d, want 401", resp.status)
			}
		})
	}
}

func TestMCPServerServesSessionStreamAndDelete(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer})
			tok := issueMCPToken(t, as, srv.URL, "mcp:read")
			init := mcpInitialize(t, srv.URL, tok.AccessToken)
			if init.status != http.StatusOK || init.session == "" {
				t.Fatalf("initialize: status %d, session %q", init.status, init.session)
			}
			h := http.Header{"Mcp-Session-Id": {init.session}, "Mcp-Protocol-Version": {"2025-06-18"}}
			if r := mcpSend(t, http.MethodPost, srv.URL, tok.AccessToken, h, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.status != http.StatusAccepted {
				t.Fatalf("initialized: status %d, want 202", r.status)
			}
			get := mcpSend(t, http.MethodGet, srv.URL, tok.AccessToken, h, "")
			if get.status != http.StatusOK || !strings.HasPrefix(get.contentType, "text/event-stream") {
				t.Errorf("GET stream: status %d, type %q; want 200 text/event-stream", get.status, get.contentType)
			}
			if del := mcpSend(t, http.MethodDelete, srv.URL, tok.AccessToken, h, ""); del.status/100 != 2 {
				t.Errorf("DELETE session: status %d, want 2xx", del.status)
			}
			after := mcpSend(t, http.MethodPost, srv.URL, tok.AccessToken, h, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
			if after.status != http.StatusNotFound {
				t.Errorf("POST to deleted session: status %d, want 404", after.status)
			}
		})
	}
}

// token is an access token with what the test knows about whom it was issued to.
type mcpToken struct {
	*oauth2.Token
	subject, clientID string
}

// connect opens an MCP session with the Go SDK client, sending tok as a bearer token; it records
// progress notifications in progress, if not nil. The session is closed (DELETE) by t.Cleanup.
func mcpConnect(t *testing.T, endpoint, tok string, progress *mcpNotes) *mcp.ClientSession {
	t.Helper()
	opts := &mcp.ClientOptions{}
	if progress != nil {
		opts.ProgressNotificationHandler = func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			progress.add(r.Params.Message)
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "testbed-test", Version: "1"}, opts)
	hc := &http.Client{Transport: mcpBearer{token: tok, base: http.DefaultTransport}}
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	t.Cleanup(func() {
		if err := cs.Close(); err != nil {
			t.Errorf("close session: %v", err)
		}
	})
	return cs
}

// callText calls a tool and returns its single text content.
func mcpCall(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("call %s: error=%v, %d contents", tool, res.IsError, len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("call %s: content is %T, want text", tool, res.Content[0])
	}
	return tc.Text
}

// bearer adds an Authorization header to every request.
type mcpBearer struct {
	token string
	base  http.RoundTripper
}

func (b mcpBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// mcpNotes records notification messages with their arrival time. Safe for concurrent use.
type mcpNotes struct {
	mu      sync.Mutex
	got     []mcpNote
	changed chan struct{} // closed and replaced by add
}

type mcpNote struct {
	msg string
	at  time.Time
}

func (n *mcpNotes) add(msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, mcpNote{msg, time.Now()})
	if n.changed != nil {
		close(n.changed)
	}
	n.changed = make(chan struct{})
}

// wait returns the notifications once there are at least count, or what arrived within 5 seconds.
func (n *mcpNotes) wait(t *testing.T, count int) []mcpNote {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		n.mu.Lock()
		if n.changed == nil {
			n.changed = make(chan struct{})
		}
		got, changed := slices.Clone(n.got), n.changed
		n.mu.Unlock()
		if len(got) >= count {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			return got
		}
	}
}

// mcpReply is what a raw request to an MCP endpoint got back.
type mcpReply struct {
	status                                int
	challenge, session, contentType, body string
}

// postInitialize sends a raw initialize request, with tok as bearer token unless it is empty.
func mcpInitialize(t *testing.T, endpoint, tok string) mcpReply {
	t.Helper()
	return mcpSend(t, http.MethodPost, endpoint, tok, nil,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
}

// send makes one raw request to an MCP endpoint and reads at most the first event of a stream.
func mcpSend(t *testing.T, method, endpoint, tok string, h http.Header, body string) mcpReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, endpoint, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	defer resp.Body.Close()
	r := mcpReply{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"),
		session: resp.Header.Get("Mcp-Session-Id"), contentType: resp.Header.Get("Content-Type")}
	if !strings.HasPrefix(r.contentType, "text/event-stream") {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if err != nil {
			t.Fatalf("%s %s: %v", method, endpoint, err)
		}
		r.body = string(b)
		return r
	}
	if method != http.MethodPost {
		return r // a GET stream need not carry any event
	}
	// Read the answer's first event, so the server is not cut off while answering.
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<16))
	for sc.Scan() {
		r.body += sc.Text() + "\n"
		if sc.Text() == "" && strings.Contains(r.body, "data:") {
			break
		}
	}
	return r
}

// issueMCPToken gets an access token for resource from the real authorization server the way an MCP
// client does: it registers a native public client (RFC 7591), runs the authorization-code flow with
// PKCE and an RFC 8707 resource in the scripted browser, signing in as "alice", and redeems the code.
// The browser reports the callback URL instead of delivering it, so no callback listener is needed.
func issueMCPToken(t *testing.T, as *AuthServer, resource, scope string) mcpToken {
	t.Helper()
	return issueMCPTokenAt(t, asEndpoints{as.RegistrationURL, as.AuthURL, as.TokenURL}, resource, scope)
}

// asEndpoints are the endpoints a client uses to get a token.
type asEndpoints struct{ registration, authorization, token string }

// issueMCPTokenAt is issueMCPToken against the given endpoints.
func issueMCPTokenAt(t *testing.T, ep asEndpoints, resource, scope string) mcpToken {
	t.Helper()
	const redirect = "http://127.0.0.1:9/callback"
	reg, err := json.Marshal(map[string]any{
		"redirect_uris": []string{redirect}, "application_type": "native", "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(ep.registration, "application/json", bytes.NewReader(reg))
	if err != nil {
		t.Fatalf("register client: %v", err)
	}
	var client struct {
		ClientID string `json:"client_id"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&client)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register client: %s %v", resp.Status, err)
	}

	cfg := oauth2.Config{
		ClientID:    client.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: ep.authorization, TokenURL: ep.token, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: redirect,
		Scopes:      strings.Fields(scope),
	}
	verifier, state := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	b := NewBrowser(t, BrowserOptions{User: "alice", NoDeliver: true})
	if err := b.Open(cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", resource))); err != nil {
		t.Fatal(err)
	}
	visit, err := b.Wait(t.Context())
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	cb, err := url.Parse(visit.Callback)
	if err != nil || cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
		t.Fatalf("authorize: callback without code or with wrong state (error=%q)", cb.Query().Get("error"))
	}
	tok, err := cfg.Exchange(t.Context(), cb.Query().Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resource))
	if err != nil {
		t.Fatalf("redeem code: %v", err)
	}
	return mcpToken{Token: tok, subject: "alice", clientID: client.ClientID}
}
