package app

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/proxy"
)

// TestProxyWritesAReceiptBeforeItForwardsOnlyWhenAsked: the receipt the stdio bridge relies on to know
// that a request was not forwarded (proxy.ReceiptHeader). Asked for, a `102 Processing` arrives before
// the server's answer on a request the proxy forwards; never on one it answers itself without
// forwarding (an unknown server, a missing key), and never unasked, since an ordinary client need not
// expect interim responses. Read from the raw connection, so nothing in between could add or hide one.
func TestProxyWritesAReceiptBeforeItForwardsOnlyWhenAsked(t *testing.T) {
	b := newBench(t, benchOptions{})
	base, err := url.Parse(b.eng.ProxyURL())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		path        string
		key         string
		receipt     bool
		wantReceipt bool
		wantStatus  int
		forwarded   bool
	}{
		{"asked, forwarded", "/mcp/bench", b.eng.ProxyKey(), true, true, http.StatusOK, true},
		{"not asked, forwarded", "/mcp/bench", b.eng.ProxyKey(), false, false, http.StatusOK, true},
		{"asked, unknown server (a JSON-RPC error)", "/mcp/nosuch", b.eng.ProxyKey(), true, false, http.StatusOK, false},
		{"asked, wrong key", "/mcp/bench", strings.Repeat("0", len(b.eng.ProxyKey())), true, false, http.StatusForbidden, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", base.Host, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n%s: %s\r\n",
				c.path, base.Host, proxy.ProxyKeyHeader, c.key)
			if c.receipt {
				req += proxy.ReceiptHeader + ": 1\r\n"
			}
			req += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(proxyInitBody), proxyInitBody)
			before := b.srv.Stats(t)
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			var statuses []int
			for {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatalf("after %v: %v", statuses, err)
				}
				statuses = append(statuses, resp.StatusCode)
				if resp.StatusCode >= 200 {
					resp.Body.Close()
					break
				}
				if h := resp.Header.Get(proxy.ProxyKeyHeader); h != "" {
					t.Errorf("the receipt carries the key back")
				}
			}
			after := b.srv.Stats(t)
			want := []int{c.wantStatus}
			if c.wantReceipt {
				want = []int{http.StatusProcessing, c.wantStatus}
			}
			if fmt.Sprint(statuses) != fmt.Sprint(want) {
				t.Errorf("statuses %v, want %v", statuses, want)
			}
			if got := after.Requests > before.Requests; got != c.forwarded {
				t.Errorf("forwarded = %v, want %v", got, c.forwarded)
			}
		})
	}
}
