package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// MCPServerOptions configures GoMCPServer and TSMCPServer; both read every field the same way, except
// Legacy, which only the Go server offers.
type MCPServerOptions struct {
	// Issuer is the authorization server's issuer (AuthServer.Issuer), listed in the protected
	// resource metadata and required in every token. Required, except with Legacy, which starts its
	// own authorization server and must leave it empty.
	Issuer string
	// AdvertiseAS is the authorization server the protected-resource metadata names instead of
	// Issuer, as Atlassian and Slack advertise another URL than their metadata's issuer (e.g.
	// AuthServer.AdvertisedIssuer). Tokens are still verified against Issuer. Default Issuer.
	AdvertiseAS string
	// OriginResource makes the protected resource the server's bare origin (http://127.0.0.1:PORT,
	// no path), as Slack advertises it: the metadata's `resource` names it, the metadata moves to the
	// root /.well-known/oauth-protected-resource (RFC 9728 §3.1), and tokens must carry the origin as
	// audience. Default false: the resource is the endpoint URL.
	OriginResource bool
	// JSONResponse makes the server answer POSTs with a single application/json body instead of a
	// text/event-stream. Default false: SSE, so notifications arrive while a tool runs.
	JSONResponse bool
	// Stateless runs the Go SDK's handler stateless (StreamableHTTPOptions.Stateless): no sessions,
	// and the only mode in which it speaks protocol 2026-07-28 (SEP-2575: no initialize, each
	// request names its version). GoMCPServer only. Default false.
	Stateless bool
	// RequiredScopes must all be granted to every request's token, else 403. Default: none.
	RequiredScopes []string
	// ProtectedMethods, when set, are the only JSON-RPC methods that need a token — e.g.
	// {"tools/call"} for a server that answers initialize, notifications and tools/list to anyone and
	// asks for a token only to run a tool (issue 11, point 9). A POST carrying none of them, and every
	// GET and DELETE, is served without a token; a token sent anyway is still verified. The 401 is the
	// usual challenge. Default: every request needs a token.
	ProtectedMethods []string
	// ToolCallScopes must be granted, on top of RequiredScopes, to a tools/call's token (step-up);
	// tools/call then always needs a token. Without them the answer is 403 with the SDK's challenge,
	// whose scope= lists RequiredScopes and ToolCallScopes together — scopes the client already holds
	// included, as the conformance suite's step-up server sends them — so a client that merely
	// appends the challenge's scopes to its own repeats them (RequestedScopes shows it). They are
	// listed in scopes_supported. Default: none.
	ToolCallScopes []string
	// Opaque verifies tokens by RFC 7662 introspection instead of as RFC 9068 JWTs against the
	// issuer's JWKS. Default false.
	Opaque bool
	// IntrospectionClientID and IntrospectionClientSecret authenticate the server to the issuer's
	// introspection endpoint (client_secret_basic). Required when Opaque, ignored otherwise (and
	// filled in from the started authorization server with Legacy).
	IntrospectionClientID, IntrospectionClientSecret string
	// Path is the MCP endpoint's path. Default "/mcp".
	Path string
	// Legacy makes a server of the 2025-03-26 revision, whose authorization server lives at its own
	// origin (see LegacyAuth). Go server only. Default LegacyNone.
	Legacy LegacyAuth
	// LegacyAS configures the authorization server a Legacy server starts, with IssuerOrigin and
	// IssuerPath unset (the issuer is the MCP origin) and Profile unset or, for
	// LegacyDefaultEndpoints, ProfileLegacy (which it then defaults to). Its Opaque makes the MCP
	// server introspect. Ignored without Legacy.
	LegacyAS AuthServerOptions
}

// validate fails the test on a bad configuration and fills in defaults.
func (o MCPServerOptions) validate(t testing.TB) MCPServerOptions {
	t.Helper()
	switch o.Legacy {
	case LegacyNone:
		if o.Issuer == "" {
			t.Fatal("MCPServerOptions.Issuer is required")
		}
	case LegacyASMetadata, LegacyDefaultEndpoints:
		if o.Issuer != "" || o.AdvertiseAS != "" || o.OriginResource {
			t.Fatal("MCPServerOptions.Legacy starts its own authorization server and publishes no resource metadata: leave Issuer, AdvertiseAS and OriginResource unset")
		}
		if o.LegacyAS.Opaque {
			o.Opaque = true
		}
	default:
		t.Fatalf("MCPServerOptions.Legacy %q is not a LegacyAuth", o.Legacy)
	}
	if o.Opaque && o.Legacy == LegacyNone && (o.IntrospectionClientID == "" || o.IntrospectionClientSecret == "") {
		t.Fatal("MCPServerOptions.Opaque needs IntrospectionClientID and IntrospectionClientSecret")
	}
	if o.Path == "" {
		o.Path = "/mcp"
	}
	if !strings.HasPrefix(o.Path, "/") {
		t.Fatalf("MCPServerOptions.Path %q must start with /", o.Path)
	}
	return o
}

// resource returns the protected resource of a server whose endpoint is base+o.Path.
func (o MCPServerOptions) resource(base string) string {
	if o.OriginResource {
		return base
	}
	return base + o.Path
}

// advertisedAS returns the authorization server the protected-resource metadata names.
func (o MCPServerOptions) advertisedAS() string {
	if o.AdvertiseAS != "" {
		return o.AdvertiseAS
	}
	return o.Issuer
}

// scopesSupported returns the scopes the protected-resource metadata lists.
func (o MCPServerOptions) scopesSupported() []string {
	var out []string
	for _, sc := range append(slices.Clone(o.RequiredScopes), o.ToolCallScopes...) {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// resourceMetadataURL returns where RFC 9728 §3.1 puts the metadata of resource: the well-known
// segment inserted between the origin and the path.
func resourceMetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		panic(err) // resource is built by this package from a listener's address
	}
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")
}

// MCPServer is a running bench MCP server, stopped by the test's cleanup. Safe for concurrent use.
type MCPServer struct {
	// URL is the MCP endpoint.
	URL string
	// Resource is the protected resource: the RFC 8707 resource a token must be issued for (its
	// audience) and the `resource` of the RFC 9728 metadata. It is URL, or the bare origin with
	// OriginResource.
	Resource string
	// ResourceMetadataURL is where the RFC 9728 metadata is served, as named by 401 challenges:
	// /.well-known/oauth-protected-resource followed by the resource's path. Empty for a Legacy
	// server, which has none.
	ResourceMetadataURL string
	// AuthServer is the authorization server a Legacy server started, whose issuer is the MCP
	// server's origin (its hooks and statistics work as usual). Nil otherwise.
	AuthServer *AuthServer

	stats       func(testing.TB) MCPStats
	redirect    func(to string)    // nil for servers that cannot be switched (the TypeScript one)
	endSessions func(t testing.TB) // nil where not offered (the Go one: use the SDK server's sessions)
}

// EndSessions ends every session of the TypeScript SDK server, as a server that restarts or expires
// them does: a request with an old session id then gets the SDK's 404, a JSON-RPC error with id null.
func (s *MCPServer) EndSessions(t testing.TB) {
	t.Helper()
	if s.endSessions == nil {
		t.Fatal("this MCP server cannot end its sessions on request")
	}
	s.endSessions(t)
}

// RedirectTo switches a Go SDK server to answering every request to its endpoint with a 307 to `to`,
// as a server that moved does (the metadata stays where it was). The requests are still counted.
func (s *MCPServer) RedirectTo(t testing.TB, to string) {
	t.Helper()
	if s.redirect == nil {
		t.Fatal("this MCP server cannot be switched to redirecting")
	}
	s.redirect(to)
}

// MCPStats counts the HTTP requests an MCP server has seen on its endpoint.
type MCPStats struct {
	Requests     int // every request to the MCP endpoint (POST, GET, DELETE), rejected ones included
	Unauthorized int // requests answered 401
	Forbidden    int // requests answered 403
}

// Stats returns the server's request counters so far.
func (s *MCPServer) Stats(t testing.TB) MCPStats {
	t.Helper()
	return s.stats(t)
}

// GoMCPServer starts, in process, an MCP server built on the official Go SDK: the SDK's streamable
// HTTP handler (stateful sessions, GET stream, DELETE) behind the SDK's auth.RequireBearerToken, and
// the SDK's RFC 9728 metadata handler. It serves the bench tools (see registerGoTools).
//
// SDK behaviour kept as is: a 401 or 403 challenge is `Bearer resource_metadata="…", scope="…"` —
// scope= listing every scope the request needs (RequiredScopes, plus ToolCallScopes on a tools/call),
// those the token holds included — with no error= parameter, so a token lacking scopes gets 403
// without `error="insufficient_scope"`; a session is bound to the subject of the token that opened
// it, so another user's token (or none) on it gets 403 "session user mismatch"; an unknown session id
// gets 404.
func GoMCPServer(t testing.TB, opts MCPServerOptions) *MCPServer {
	t.Helper()
	opts = opts.validate(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("go mcp server: %v", err)
	}
	base := "http://" + l.Addr().String()
	s := &MCPServer{URL: base + opts.Path, Resource: opts.resource(base)}
	discoverAt := opts.Issuer
	if opts.Legacy == LegacyNone {
		s.ResourceMetadataURL = resourceMetadataURL(s.Resource)
	} else {
		s.AuthServer, discoverAt = startFrontedAuthServer(t, base, opts.Legacy, opts.LegacyAS)
		opts.Issuer = s.AuthServer.Issuer
		opts.IntrospectionClientID, opts.IntrospectionClientSecret = s.AuthServer.IntrospectionClient()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, err := newTokenVerifier(ctx, opts.Issuer, discoverAt, s.Resource, opts)
	if err != nil {
		l.Close()
		t.Fatalf("go mcp server: %v", err)
	}

	server := mcp.NewServer(&mcp.Implementation{Name: "authkeeper-bench-go", Version: "1"}, nil)
	registerGoTools(server)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{JSONResponse: opts.JSONResponse, Stateless: opts.Stateless})
	protect := func(scopes []string) http.Handler {
		return auth.RequireBearerToken(v.Verify, &auth.RequireBearerTokenOptions{
			ResourceMetadataURL: s.ResourceMetadataURL,
			Scopes:              scopes,
		})(mcpHandler)
	}
	gate := &mcpGate{open: mcpHandler, protected: protect(opts.RequiredScopes), methods: opts.ProtectedMethods}
	if len(opts.ToolCallScopes) > 0 {
		gate.toolCall = protect(opts.scopesSupported())
	}
	var endpoint http.Handler = gate
	if opts.Legacy != LegacyNone {
		endpoint = bareChallenge(endpoint)
	}
	var c mcpCounters
	var moved atomic.Pointer[string]
	s.redirect = func(to string) { moved.Store(&to) }
	mux := http.NewServeMux()
	mux.Handle(opts.Path, c.count(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := moved.Load(); to != nil {
			http.Redirect(w, r, *to, http.StatusTemporaryRedirect)
			return
		}
		endpoint.ServeHTTP(w, r)
	})))
	if opts.Legacy == LegacyNone {
		mux.Handle(strings.TrimPrefix(s.ResourceMetadataURL, base), auth.ProtectedResourceMetadataHandler(
			&oauthex.ProtectedResourceMetadata{
				Resource:               s.Resource,
				AuthorizationServers:   []string{opts.advertisedAS()},
				ScopesSupported:        opts.scopesSupported(),
				BearerMethodsSupported: []string{"header"},
			}))
	} else {
		mountLegacyFront(mux, opts.Legacy, s.AuthServer)
	}
	s.stats = func(testing.TB) MCPStats { return c.snapshot() }

	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	t.Cleanup(func() {
		// Open GET streams never go idle, so close the sessions first or Shutdown would wait.
		for ss := range server.Sessions() {
			_ = ss.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			_ = hs.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("go mcp server: %v", err)
		}
	})
	return s
}

// mcpCounters implements MCPStats for the Go server.
type mcpCounters struct{ requests, unauthorized, forbidden atomic.Int64 }

func (c *mcpCounters) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		h.ServeHTTP(&mcpStatusRecorder{ResponseWriter: w, c: c}, r)
	})
}

func (c *mcpCounters) snapshot() MCPStats {
	return MCPStats{Requests: int(c.requests.Load()), Unauthorized: int(c.unauthorized.Load()), Forbidden: int(c.forbidden.Load())}
}

// mcpStatusRecorder counts 401 and 403 answers. It unwraps to the real writer so that the SDK can still
// flush SSE events through http.ResponseController.
type mcpStatusRecorder struct {
	http.ResponseWriter
	c *mcpCounters
}

func (w *mcpStatusRecorder) WriteHeader(code int) {
	switch code {
	case http.StatusUnauthorized:
		w.c.unauthorized.Add(1)
	case http.StatusForbidden:
		w.c.forbidden.Add(1)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *mcpStatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// The bench tools, identical in name, arguments and results on the Go and TS servers:
//
//	echo {text}                 → text
//	add {a, b}                  → a+b, formatted as JavaScript's String(number) would for ordinary values
//	whoami {}                   → {"subject","client_id","scopes","expires_at"} as the server saw the token
//	countdown {n, interval_ms}  → n notifications interval_ms apart, then "done"
//	slow {ms}                   → "slept <ms>ms" after ms milliseconds
//
// countdown's notifications are notifications/progress (progress i, total n, message "countdown i/n"),
// sent only when the call carries a progress token, as the specification requires; without one it
// just takes as long. (Logging notifications would need no token, but SEP-2577 deprecates logging
// and the Go SDK sends them only after logging/setLevel.) Over SSE they stream on the call's POST
// response; in JSON mode the Go SDK moves them to the session's GET stream, and the TS SDK drops them.
func registerGoTools(s *mcp.Server) {
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Returns text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return mcpText(in.Text), nil, nil
		})
	type addIn struct {
		A float64 `json:"a"`
		B float64 `json:"b"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Returns a+b."},
		func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, any, error) {
			return mcpText(strconv.FormatFloat(in.A+in.B, 'f', -1, 64)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Describes the caller's token, never the token itself."},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			ti := req.Extra.TokenInfo
			sub, _ := ti.Extra["sub"].(string)
			client, _ := ti.Extra["client_id"].(string)
			b, err := json.Marshal(Whoami{Subject: sub, ClientID: client, Scopes: append([]string{}, ti.Scopes...), ExpiresAt: ti.Expiration.Unix()})
			return mcpText(string(b)), nil, err
		})
	type countdownIn struct {
		N          int `json:"n"`
		IntervalMS int `json:"interval_ms"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "countdown", Description: "Sends n notifications interval_ms apart."},
		func(ctx context.Context, req *mcp.CallToolRequest, in countdownIn) (*mcp.CallToolResult, any, error) {
			token := req.Params.GetProgressToken()
			for i := 1; i <= in.N; i++ {
				if i > 1 {
					if err := sleepCtx(ctx, in.IntervalMS); err != nil {
						return nil, nil, err
					}
				}
				if token == nil {
					continue
				}
				err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token,
					Progress: float64(i), Total: float64(in.N), Message: fmt.Sprintf("countdown %d/%d", i, in.N)})
				if err != nil {
					return nil, nil, err
				}
			}
			return mcpText("done"), nil, nil
		})
	type slowIn struct {
		MS int `json:"ms"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "Returns after ms milliseconds."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in slowIn) (*mcp.CallToolResult, any, error) {
			if err := sleepCtx(ctx, in.MS); err != nil {
				return nil, nil, err
			}
			return mcpText(fmt.Sprintf("slept %dms", in.MS)), nil, nil
		})
}

// Whoami is the JSON text the whoami tool returns.
type Whoami struct {
	Subject   string   `json:"subject"`
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	ExpiresAt int64    `json:"expires_at"` // Unix seconds
}

func mcpText(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func sleepCtx(ctx context.Context, ms int) error {
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
