package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
)

// TestBridgeSaysACallIsRetryableOnlyWhenItCannotHaveRun: a call the bridge could not relay is answered
// with a proxy_error whose retryable flag a client may obey. It is true only when the owner cannot
// have forwarded the call (the proxy could not be dialled, or every connection failed before its
// receipt); once the owner may have forwarded it — it gave its receipt, or an owner without receipts
// read the body, or the server answered without the result — the answer says the call may or may not
// have run and is not retryable, so an agent that obeys it never runs a tool twice.
func TestBridgeSaysACallIsRetryableOnlyWhenItCannotHaveRun(t *testing.T) {
	const call = `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"transfer"}}`
	type answer struct {
		Code       int
		Retryable  bool
		MayHaveRun bool // the message says the call may or may not have run
		Calls      int  // copies of the call the owner got
	}
	tests := []struct {
		name string
		// owner handles every request at the owner; nil means no owner listens at all.
		owner    http.HandlerFunc
		receipts bool
		noOwner  bool // Resolve finds no owner and cannot become one
		want     answer
	}{
		{"no owner can be found", nil, true, true,
			answer{Code: proxy.CodeProxyError, Retryable: true}},
		{"no owner listens", nil, true, false,
			answer{Code: proxy.CodeProxyError, Retryable: true}},
		{"the owner dies before its receipt, every time, and none takes over", func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			hijackClose(t, w)
		}, true, false, answer{Code: proxy.CodeProxyError, Retryable: true, Calls: -1}},
		{"the owner dies after its receipt", func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			w.WriteHeader(http.StatusProcessing)
			hijackClose(t, w)
		}, true, false, answer{Code: proxy.CodeProxyError, MayHaveRun: true, Calls: 1}},
		{"an owner without receipts dies after reading the body", func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			hijackClose(t, w)
		}, false, false, answer{Code: proxy.CodeProxyError, MayHaveRun: true, Calls: 1}},
		{"the server accepts the call and sends no answer", func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			w.WriteHeader(http.StatusProcessing)
			w.WriteHeader(http.StatusAccepted)
		}, true, false, answer{Code: proxy.CodeProxyError, MayHaveRun: true, Calls: 1}},
		{"the answer stream ends before the answer", func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			w.WriteHeader(http.StatusProcessing)
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, ": working\n\n")
		}, true, false, answer{Code: proxy.CodeProxyError, MayHaveRun: true, Calls: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			url := fmt.Sprintf("http://127.0.0.1:%d", testbed.FreePort(t))
			if tt.owner != nil {
				owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					calls++
					mu.Unlock()
					tt.owner(w, r)
				}))
				t.Cleanup(owner.Close)
				url = owner.URL
			}
			rb := newRawBridgeWith(t, func(_ context.Context, renew bool) (control.ProxyInfo, error) {
				if tt.noOwner || (renew && tt.owner != nil) {
					return control.ProxyInfo{}, errors.New("no owner took over")
				}
				return control.ProxyInfo{URL: url, Key: "k", Receipts: tt.receipts}, nil
			})
			m := rb.exchange(call)
			rb.end()
			e, _ := m["error"].(map[string]any)
			data, _ := e["data"].(map[string]any)
			msg, _ := e["message"].(string)
			code, _ := e["code"].(float64)
			retryable, _ := data["retryable"].(bool)
			mu.Lock()
			got := answer{Code: int(code), Retryable: retryable, MayHaveRun: strings.Contains(msg, "may or may not have run"), Calls: calls}
			mu.Unlock()
			want := tt.want
			if want.Calls < 0 { // however often the owner saw it, it forwarded none
				want.Calls = got.Calls
			}
			if m["id"] != float64(9) || data["type"] != "proxy_error" || data["subtype"] != proxy.SubtypeBridge {
				t.Errorf("the call was answered %v; want a bridge proxy_error for id 9", m)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s\nmessage: %s\naction: %v\nbridge log:\n%s", diff, msg, data["action"], rb.log)
			}
		})
	}
}
