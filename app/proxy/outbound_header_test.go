package proxy

import (
	"net/http"
	"testing"
)

// TestOutboundHeaderKeepsTheProxysOwnHeadersAtTheProxy: what a caller sends for the proxy alone — the
// access key, the request for a receipt, its own credentials — never reaches the server, while the MCP
// headers pass unchanged.
func TestOutboundHeaderKeepsTheProxysOwnHeadersAtTheProxy(t *testing.T) {
	in := http.Header{
		ProxyKeyHeader:         {"key"},
		ReceiptHeader:          {"1"},
		"Authorization":        {"Bearer caller"},
		"Cookie":               {"c=1"},
		"Expect":               {"100-continue"},
		"Mcp-Session-Id":       {"s1"},
		"Mcp-Protocol-Version": {"2025-06-18"},
		"Accept":               {"application/json, text/event-stream"},
	}
	out := outboundHeader(in.Clone())
	for _, k := range []string{ProxyKeyHeader, ReceiptHeader, "Authorization", "Cookie", "Expect"} {
		if v, ok := out[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("%s forwarded: %q", k, v)
		}
	}
	for _, k := range []string{"Mcp-Session-Id", "Mcp-Protocol-Version", "Accept"} {
		if out.Get(k) != in.Get(k) {
			t.Errorf("%s = %q, want %q", k, out.Get(k), in.Get(k))
		}
	}
}
