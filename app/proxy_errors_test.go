package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/google/go-cmp/cmp"
)

// TestProxyRecognisesJSONRPCAuthErrorsIn200Bodies pins which 200 JSON bodies count as a rejected token
// (and so cause one refresh and a replay): auth-failure messages and code 401 do; tool results and
// other errors do not.
func TestProxyRecognisesJSONRPCAuthErrorsIn200Bodies(t *testing.T) {
	for _, c := range []struct {
		body string
		want bool
	}{
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Unauthorized"}}`, true},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Authentication failed: token expired"}}`, true},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":401,"message":"nope"}}`, true},
		{` {"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"invalid_token"}}`, true},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}`, false},
		{`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"{\"error\":{\"message\":\"unauthorized\"}}"}]}}`, false},
		{`[{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Unauthorized"}}]`, false},
		{`{not json "error"`, false},
		{``, false},
	} {
		if got := proxy.RPCAuthError([]byte(c.body)); got != c.want {
			t.Errorf("rpcAuthError(%s) = %v, want %v", c.body, got, c.want)
		}
	}
}

// TestProxyFindsTheCallsToAnswer pins which ids get an error response: requests in a message or a
// batch, never notifications or responses.
func TestProxyFindsTheCallsToAnswer(t *testing.T) {
	for _, c := range []struct {
		body  string
		ids   []string
		batch bool
	}{
		{`{"jsonrpc":"2.0","id":7,"method":"tools/call"}`, []string{"7"}, false},
		{`{"jsonrpc":"2.0","id":"a","method":"tools/call"}`, []string{`"a"`}, false},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, false},
		{`{"jsonrpc":"2.0","id":3,"result":{}}`, nil, false},
		{`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":2,"method":"b"}]`, []string{"1", "2"}, true},
		{`garbage`, nil, false},
	} {
		ids, batch := proxy.CallIDs([]byte(c.body))
		var got []string
		for _, id := range ids {
			got = append(got, string(id))
		}
		if diff := cmp.Diff(c.ids, got); diff != "" || batch != c.batch {
			t.Errorf("callIDs(%s): batch %v (want %v), ids -want +got:\n%s", c.body, batch, c.batch, diff)
		}
	}
}

// TestProxyAnswersEveryKindOfRequestWhenSignedOut: after a logout, a call gets 200 and the
// sign_in_required error under its id, a batch gets one error per call, and a notification, a GET and
// a DELETE get 503 with the error under id null — none of them reaches the server.
func TestProxyAnswersEveryKindOfRequestWhenSignedOut(t *testing.T) {
	b := newProxyBench(t, proxyBenchOptions{})
	if err := b.eng.Logout(t.Context(), "bench"); err != nil {
		t.Fatal(err)
	}
	before := b.srv.Stats(t).Requests
	u := b.eng.ProxyEndpoint("bench")
	for _, c := range []struct {
		method, body string
		status       int
		ids          []string
	}{
		{http.MethodPost, proxyInitBody, http.StatusOK, []string{"7"}},
		{http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, http.StatusOK, []string{"1", "2"}},
		{http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, http.StatusServiceUnavailable, []string{"null"}},
		{http.MethodGet, "", http.StatusServiceUnavailable, []string{"null"}},
		{http.MethodDelete, "", http.StatusServiceUnavailable, []string{"null"}},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, _ := http.NewRequest(c.method, u, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var rs []proxy.RPCResponse
		if strings.HasPrefix(string(data), "[") {
			err = json.Unmarshal(data, &rs)
		} else {
			var r proxy.RPCResponse
			err = json.Unmarshal(data, &r)
			rs = []proxy.RPCResponse{r}
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, string(r.ID))
			if r.Error.Code != proxy.CodeAuthFailure || r.Error.Data.Subtype != proxy.SubtypeSignInRequired || r.Error.Data.Server != "bench" {
				t.Errorf("%s %s: error %+v, want sign_in_required for bench", c.method, c.body, r.Error)
			}
		}
		if err != nil || resp.StatusCode != c.status || !cmp.Equal(ids, c.ids) {
			t.Errorf("%s %s: status %d ids %v (%v), want %d %v; body %s", c.method, c.body, resp.StatusCode, ids, err, c.status, c.ids, data)
		}
	}
	if n := b.srv.Stats(t).Requests - before; n != 0 {
		t.Errorf("%d requests reached the server without a token", n)
	}
}
