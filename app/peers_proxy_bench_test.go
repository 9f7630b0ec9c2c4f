package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// proxySession opens a Go SDK client session to server "bench" through the proxy.
func (b *bench) proxySession(t *testing.T, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "proxy-test", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: b.eng.ProxyEndpoint("bench")}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// proxyEcho calls the echo tool and returns its text.
func proxyEcho(ctx context.Context, cs *mcp.ClientSession, text string) (string, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		return "", err
	}
	if res.IsError || len(res.Content) != 1 {
		return "", errors.New("echo: tool error")
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		return "", errors.New("echo: not text")
	}
	return tc.Text, nil
}

// proxyWhoami calls the whoami tool: what the server saw of the token.
func proxyWhoami(ctx context.Context, cs *mcp.ClientSession) (testbed.Whoami, error) {
	var w testbed.Whoami
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		return w, err
	}
	if res.IsError || len(res.Content) != 1 {
		return w, errors.New("whoami: tool error")
	}
	tc, _ := res.Content[0].(*mcp.TextContent)
	if tc == nil {
		return w, errors.New("whoami: not text")
	}
	return w, json.Unmarshal([]byte(tc.Text), &w)
}

// proxyStructured returns the proxy's error data from a failed call, or fails the test.
func proxyStructured(t *testing.T, err error) (*jsonrpc.Error, proxy.ErrorData) {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("call error %v (%T) is not a JSON-RPC error", err, err)
	}
	var d proxy.ErrorData
	if err := json.Unmarshal(we.Data, &d); err != nil {
		t.Fatalf("error data %s: %v", we.Data, err)
	}
	return we, d
}

// proxyRecord reads server "bench"'s credentials from the real keyring.
func proxyRecord(t *testing.T) keychain.Record { t.Helper(); return storedRecord(t, "bench") }

// storedRecord reads server name's credentials from the real keyring.
func storedRecord(t *testing.T, name string) keychain.Record {
	t.Helper()
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ks.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// rebind stops b's engine and edits server "bench" as a user's hand edit or a moved server would — its
// URL in the settings file (unless url is ""), and its stored record through edit — then starts a new
// engine on the same files and keychain.
func (b *bench) rebind(t *testing.T, url string, edit func(*keychain.Record)) {
	t.Helper()
	if err := b.eng.Close(); err != nil {
		t.Fatal(err)
	}
	if url != "" {
		conf, err := keychain.NewConfigFile(b.paths.ConfigDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := conf.Load()
		if err != nil {
			t.Fatal(err)
		}
		s.Servers[0].URL = url
		if err := conf.Save(s); err != nil {
			t.Fatal(err)
		}
	}
	store, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.Get("bench")
	if err != nil {
		t.Fatal(err)
	}
	edit(&r)
	if _, err := store.Put("bench", r); err != nil {
		t.Fatal(err)
	}
	b.eng = startEngine(t, engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Opener: b.browser})
}

const proxyInitBody = `{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// proxyPost sends body to url with header set on top of the MCP defaults and returns the status and body.
func proxyPost(t *testing.T, rawURL string, set http.Header, body string) (int, http.Header, string) {
	t.Helper()
	return proxyRequest(t, http.MethodPost, rawURL, set, body)
}

// proxyRequest sends one request as an MCP client would (JSON in, JSON or SSE accepted) with the
// headers in set, and returns the answer; a body of "" sends none.
func proxyRequest(t *testing.T, method, rawURL string, set http.Header, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range set {
		req.Header[k] = v
	}
	if h := set.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}
