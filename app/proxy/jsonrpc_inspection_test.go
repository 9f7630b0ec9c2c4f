package proxy

import (
	"testing"

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
		if got := rpcAuthError([]byte(c.body)); got != c.want {
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
		ids, batch := callIDs([]byte(c.body))
		var got []string
		for _, id := range ids {
			got = append(got, string(id))
		}
		if diff := cmp.Diff(c.ids, got); diff != "" || batch != c.batch {
			t.Errorf("callIDs(%s): batch %v (want %v), ids -want +got:\n%s", c.body, batch, c.batch, diff)
		}
	}
}
