package app

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// No credential crosses the network in clear text: the proxy sends none to a plain-http server on
// another host. (That add refuses such a server is
// TestAddRefusesACredentialForAPlainHTTPServerOnAnotherHost, with the real peers.) No peers here:
// an in-memory store.

// remoteServer is an MCP endpoint on a non-loopback address of this machine, recording the
// Authorization header of every request it gets. It skips the test on a machine without such an
// address.
type remoteServer struct {
	URL  string
	mu   sync.Mutex
	auth []string
}

func newRemoteServer(t *testing.T) *remoteServer {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			if l, err = net.Listen("tcp", net.JoinHostPort(ip.IP.String(), "0")); err == nil {
				break
			}
		}
	}
	if l == nil {
		t.Skip("no non-loopback IPv4 address to listen on")
	}
	rs := &remoteServer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.auth = append(rs.auth, r.Header.Get("Authorization"))
		rs.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":7,"result":{}}`))
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	rs.URL = srv.URL + "/mcp"
	return rs
}

// seen returns the Authorization headers received so far ("" for none).
func (rs *remoteServer) seen() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.auth...)
}

// startSeeded starts an engine on an in-memory store holding records, with settings listing servers.
func startSeeded(t *testing.T, servers []keychain.Server, records map[string]keychain.Record) *engine.Engine {
	t.Helper()
	paths := tempPaths(t)
	conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := keychain.DefaultSettings()
	s.Servers = servers
	if err := conf.Save(s); err != nil {
		t.Fatal(err)
	}
	store := keychain.NewMemoryStore(time.Now)
	for name, rec := range records {
		if _, err := store.Put(name, rec); err != nil {
			t.Fatal(err)
		}
	}
	eng := startEngine(t, engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Store: store})
	return eng
}

// TestProxySendsNoCredentialOverPlainHTTPToAnotherHost: a server with a static token whose URL is plain
// http to another host (a hand-edited config; add refuses it) gets nothing from the proxy — the call
// fails with proxy_error/insecure_url and the host sees no request — while a server without auth at
// such a URL is forwarded as before, without Authorization.
func TestProxySendsNoCredentialOverPlainHTTPToAnotherHost(t *testing.T) {
	remote := newRemoteServer(t)
	eng := startSeeded(t, []keychain.Server{{Name: "keyed", URL: remote.URL}, {Name: "open", URL: remote.URL}},
		map[string]keychain.Record{
			"keyed": engine.ToRecord(oauth.Token{AccessToken: "secret-api-key", TokenType: "Bearer"},
				oauth.Grant{Resource: remote.URL, Registration: engine.RegistrationStaticToken}),
			"open": engine.ToRecord(oauth.Token{}, oauth.Grant{Resource: remote.URL, Registration: engine.RegistrationNoAuth}),
		})

	status, _, body := proxyPost(t, eng.ProxyEndpoint("keyed"), nil, proxyInitBody)
	var r proxy.RPCResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != http.StatusOK || r.Error.Code != proxy.CodeProxyError ||
		r.Error.Data.Subtype != "insecure_url" || r.Error.Data.Retryable {
		t.Errorf("call to the static-token server: %d %s; want the non-retryable proxy_error/insecure_url", status, body)
	}
	if got := remote.seen(); len(got) != 0 {
		t.Fatalf("the remote host got %d requests for the server with a token, want none", len(got))
	}

	if status, _, body := proxyPost(t, eng.ProxyEndpoint("open"), nil, proxyInitBody); status != http.StatusOK || body != `{"jsonrpc":"2.0","id":7,"result":{}}` {
		t.Errorf("call to the server without auth: %d %s; want it forwarded", status, body)
	}
	if got := remote.seen(); len(got) != 1 || got[0] != "" {
		t.Errorf("the remote host saw Authorization %q, want one request without it", got)
	}
}
