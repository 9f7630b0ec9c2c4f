//go:build linux

package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// env is the bench: one engine signed in to a JSON-mode and an SSE-mode Go SDK server.
type env struct {
	eng    *engine.Engine
	as     *testbed.AuthServer
	urls   map[string]string // mode → the server's own URL
	bares  map[string]string // mode → the bare reverse proxy's URL (see bare)
	relays map[string]string // mode → the byte relay's URL (see relay)
	// childEnv is the environment under which a child authkeeper process (the bridge) finds this
	// engine as its owner and the same keyring.
	childEnv []string
}

func newEnv(t *testing.T) *env {
	testbed.StartKeyring(t)
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	browser := testbed.NewBrowser(t, testbed.BrowserOptions{})
	paths, childEnv := homeDirs(t)
	eng, err := engine.New(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Opener: browser, Proxy: proxy.FrontEnd, Control: control.FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	e := &env{eng: eng, as: as, urls: map[string]string{}, bares: map[string]string{}, relays: map[string]string{}, childEnv: childEnv}
	for _, mode := range []string{"json", "sse"} {
		srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, JSONResponse: mode == "json", RequiredScopes: []string{"mcp:read"}})
		if err := eng.Add(context.Background(), engine.AddRequest{Name: mode, URL: srv.URL}); err != nil {
			t.Fatal(err)
		}
		e.urls[mode] = srv.URL
	}
	return e
}

// bearer adds the engine's current token to direct requests, as an agent holding the token would.
type bearer struct {
	eng  *engine.Engine
	name string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := b.eng.Token(r.Context(), b.name)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.base.RoundTrip(r)
}

// Paths a client can take to a server.
const (
	viaDirect = "direct"  // to the server, sending the engine's current token itself
	viaProxy  = "proxied" // through authkeeper's proxy, which adds the token
	viaBare   = "bare"    // through a bare httputil.ReverseProxy that adds the token: the floor
	viaRelay  = "relay"   // through a TCP relay that copies bytes, the client sending the token: the hop alone
)

// session connects one Go SDK client to mode's server by path via; the caller closes it (see
// closeSessions). Every client has its own transport, as separate agent processes would.
func (e *env) session(t *testing.T, mode, via string, opts *mcp.ClientOptions) *mcp.ClientSession {
	base := &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}
	t.Cleanup(base.CloseIdleConnections)
	tr := &mcp.StreamableClientTransport{Endpoint: e.eng.ProxyEndpoint(mode), HTTPClient: &http.Client{Transport: base}, DisableStandaloneSSE: true}
	switch via {
	case viaDirect:
		tr.Endpoint = e.urls[mode]
		tr.HTTPClient = &http.Client{Transport: bearer{eng: e.eng, name: mode, base: base}}
	case viaBare:
		tr.Endpoint = e.bare(t, mode)
	case viaRelay:
		tr.Endpoint = e.relay(t, mode)
		tr.HTTPClient = &http.Client{Transport: bearer{eng: e.eng, name: mode, base: base}}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, opts)
	cs, err := c.Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("connect %s (%s): %v", mode, via, err)
	}
	return cs
}

// closeSessions closes every session.
func closeSessions(t *testing.T, ss []*mcp.ClientSession) {
	t.Helper()
	for _, cs := range ss {
		if err := cs.Close(); err != nil {
			t.Errorf("close a session: %v", err)
		}
	}
}

// bare starts (once per mode) the floor any proxy in between has to pay: net/http/httputil's
// ReverseProxy on 127.0.0.1, which does nothing but add the engine's token and forward, flushing at
// once (SSE). It returns its URL.
func (e *env) bare(t *testing.T, mode string) string {
	if u, ok := e.bares[mode]; ok {
		return u
	}
	target, err := url.Parse(e.urls[mode])
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u := *target
			r.Out.URL, r.Out.Host = &u, target.Host
			if tok, err := e.eng.Token(r.In.Context(), mode); err == nil {
				r.Out.Header.Set("Authorization", "Bearer "+tok)
			}
		},
		Transport:     &http.Transport{MaxIdleConnsPerHost: 128, Proxy: nil},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	e.bares[mode] = srv.URL + "/mcp"
	return e.bares[mode]
}

// relay starts (once per mode) a reference point for the hop alone: a TCP relay on 127.0.0.1 that
// copies bytes both ways between each client connection and a connection of its own to the server
// (io.Copy in a goroutine per direction, which is splice(2) through a pipe on Linux). It parses
// nothing and adds nothing: the client sends the token itself, as on the direct path. What it costs
// is the hop's system calls and the wake-ups of the goroutines that make them; it is one Go design of
// a cheap hop, not a proven lower bound. It returns the URL to call.
func (e *env) relay(t *testing.T, mode string) string {
	if u, ok := e.relays[mode]; ok {
		return u
	}
	target, err := url.Parse(e.urls[mode])
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close() // the clients' idle connections may outlive the sessions
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return // closed
			}
			mu.Lock()
			conns[in] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				pipe(in, target.Host)
				mu.Lock()
				delete(conns, in)
				mu.Unlock()
			}()
		}
	}()
	u := *target
	u.Host = ln.Addr().String()
	e.relays[mode] = u.String()
	return e.relays[mode]
}

// pipe copies between in and a new connection to addr until either side closes, then closes both.
func pipe(in net.Conn, addr string) {
	defer in.Close()
	out, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, in); done <- struct{}{} }()
	go func() { io.Copy(in, out); done <- struct{}{} }()
	<-done // one side closed: end both, so that the other copy returns too
	in.Close()
	out.Close()
	<-done
}
