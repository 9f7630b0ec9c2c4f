package bridge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestProxyTransportWithReceiptsResendsOnlyWhatWasNotForwarded: with an owner that gives receipts, a
// request goes out whole at once (no Expect: 100-continue) and is sent again — to the new owner, or on
// a new connection to the same owner when only its kept-alive connection was stale — exactly when the
// connection failed before the receipt arrived. A proxy writes its receipt before it forwards, so a
// request the old owner acknowledged is never sent twice, even though the old owner died before
// answering. The owners here are stand-ins for the proxy's one-method contract (receipt, then
// forward); the real proxy's side is TestProxyWritesAReceiptBeforeItForwardsOnlyWhenAsked in app.
func TestProxyTransportWithReceiptsResendsOnlyWhatWasNotForwarded(t *testing.T) {
	const body = `{"jsonrpc":"2.0","id":7,"method":"tools/call"}`
	tests := []struct {
		name string
		// old handles the second request at the old owner (the first warms a kept-alive connection);
		// nil means the old owner is not listening at all.
		old        func(t *testing.T, w http.ResponseWriter, r *http.Request, oldOwner *httptest.Server)
		wantResent string // "" (an error for the caller), "new" (to the new owner) or "same" (the old owner, again)
	}{
		{"the old owner is gone before the dial", nil, "new"},
		{"the old owner dies before reading the request", func(t *testing.T, w http.ResponseWriter, r *http.Request, _ *httptest.Server) {
			hijackClose(t, w)
		}, "new"},
		{"the old owner reads the request and dies before its receipt", func(t *testing.T, w http.ResponseWriter, r *http.Request, _ *httptest.Server) {
			if b, _ := io.ReadAll(r.Body); string(b) != body {
				t.Errorf("old owner read %q", b)
			}
			hijackClose(t, w)
		}, "new"},
		{"the old owner gives its receipt and dies", func(t *testing.T, w http.ResponseWriter, r *http.Request, _ *httptest.Server) {
			io.ReadAll(r.Body)
			w.WriteHeader(http.StatusProcessing)
			hijackClose(t, w)
		}, ""},
		{"the old owner answers with an error after its receipt", func(t *testing.T, w http.ResponseWriter, r *http.Request, _ *httptest.Server) {
			io.ReadAll(r.Body)
			w.WriteHeader(http.StatusProcessing)
			http.Error(w, "upstream failed", http.StatusBadGateway)
		}, "answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var newGot []string
			newOwner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				newGot = append(newGot, string(b))
				mu.Unlock()
				if r.Header.Get(proxy.ProxyKeyHeader) != "new-key" || r.Header.Get(proxy.ReceiptHeader) == "" {
					t.Errorf("new owner got key %q, receipt request %q", r.Header.Get(proxy.ProxyKeyHeader), r.Header.Get(proxy.ReceiptHeader))
				}
				io.WriteString(w, "from the new owner")
			}))
			defer newOwner.Close()
			oldURL := fmt.Sprintf("http://127.0.0.1:%d", testbed.FreePort(t))
			var oldSeen []http.Header
			if tt.old != nil {
				var oldOwner *httptest.Server
				oldOwner = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					oldSeen = append(oldSeen, r.Header.Clone())
					n := len(oldSeen)
					mu.Unlock()
					if n == 1 {
						io.ReadAll(r.Body)
						io.WriteString(w, "warm")
						return
					}
					tt.old(t, w, r, oldOwner)
				}))
				defer oldOwner.Close()
				oldURL = oldOwner.URL
			}
			renewals := 0
			rt := &proxyTransport{base: http.DefaultTransport.(*http.Transport).Clone(), resolve: func(_ context.Context, renew bool) (control.ProxyInfo, error) {
				if renew {
					renewals++
					return control.ProxyInfo{URL: newOwner.URL, Key: "new-key", Receipts: true}, nil
				}
				return control.ProxyInfo{URL: oldURL, Key: "old-key", Receipts: true}, nil
			}}
			defer rt.conns.drop()
			client := &http.Client{Transport: rt}
			if tt.old != nil { // a kept-alive connection to the old owner, as a running bridge has
				resp, err := client.Post("http://authkeeper/mcp/x", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			resp, err := client.Post("http://authkeeper/mcp/x", "application/json", strings.NewReader(body))
			var got string
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = string(b)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, h := range oldSeen {
				if h.Get("Expect") != "" || h.Get(proxy.ReceiptHeader) == "" {
					t.Errorf("request %d to the old owner: Expect %q, receipt request %q; want no Expect and a receipt request", i, h.Get("Expect"), h.Get(proxy.ReceiptHeader))
				}
			}
			switch tt.wantResent {
			case "new":
				if err != nil || got != "from the new owner" || len(newGot) != 1 || newGot[0] != body || renewals != 1 {
					t.Errorf("err %v, answer %q, new owner got %q, %d renewals; want the new owner's answer to one copy of the body", err, got, newGot, renewals)
				}
			case "answered":
				if err != nil || resp.StatusCode != http.StatusBadGateway || len(newGot) != 0 || renewals != 0 {
					t.Errorf("err %v, answer %q, new owner got %q, %d renewals; want the old owner's 502 and nothing resent", err, got, newGot, renewals)
				}
			default:
				if err == nil {
					t.Fatalf("a request the old owner acknowledged was answered (%q): it was sent again", got)
				}
				if len(newGot) != 0 || renewals != 0 || len(oldSeen) != 2 {
					t.Errorf("new owner got %q after %d renewals, the old owner saw %d requests: an acknowledged request was sent again", newGot, renewals, len(oldSeen))
				}
			}
		})
	}
}

// TestProxyTransportWithReceiptsRetriesAStaleConnectionOnTheSameOwner: a kept-alive connection the
// live owner closed while it was idle fails before any receipt; the request goes again on a new
// connection to the same owner, without looking for another. The owner counts the connections it
// accepts: two requests on one prove that an answered connection is kept and reused, so the request
// after the owner closed it goes first on that stale connection, and then on exactly one new one.
func TestProxyTransportWithReceiptsRetriesAStaleConnectionOnTheSameOwner(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	accepted := 0
	owner := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusProcessing)
		io.WriteString(w, "ok")
	}))
	owner.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			accepted++
			mu.Unlock()
		}
	}
	owner.Start()
	defer owner.Close()
	connections := func() int {
		mu.Lock()
		defer mu.Unlock()
		return accepted
	}
	renewals := 0
	rt := &proxyTransport{base: http.DefaultTransport, resolve: func(_ context.Context, renew bool) (control.ProxyInfo, error) {
		if renew {
			renewals++
		}
		return control.ProxyInfo{URL: owner.URL, Key: "k", Receipts: true}, nil
	}}
	defer rt.conns.drop()
	client := &http.Client{Transport: rt}
	post := func(text string) (string, error) {
		resp, err := client.Post("http://authkeeper/mcp/x", "application/json", strings.NewReader(text))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for _, text := range []string{"one", "again"} {
		if got, err := post(text); err != nil || got != "ok" {
			t.Fatalf("request %q: %q %v", text, got, err)
		}
	}
	if n := connections(); n != 1 {
		t.Fatalf("two requests in a row took %d connections, want 1: the kept-alive connection was not reused", n)
	}
	owner.CloseClientConnections() // the owner drops its idle connections, as after its idle timeout
	if got, err := post("two"); err != nil || got != "ok" {
		t.Fatalf("request on a stale connection: %q %v", got, err)
	}
	if n := connections(); n != 2 {
		t.Errorf("the owner accepted %d connections, want 2: the stale one and one new one for the retry", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(bodies) != "[one again two]" || renewals != 0 {
		t.Errorf("the owner got %q after %d renewals; want each request once and no new owner", bodies, renewals)
	}
}
