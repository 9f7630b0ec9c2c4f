package oauth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// session is what an unauthenticated initialize opened: the MCP session id (Streamable HTTP) and the
// negotiated protocol version, both sent on the requests that follow it.
type session struct{ id, version string }

// refusal is a later request's answer demanding a token.
type refusal struct {
	method string
	status int
	header http.Header
}

// probeCalls are what a client sends after initialize, in order (MCP lifecycle): the initialized
// notification, tools/list, and tools/call — of a tool whose name no server can have, so that the
// probe never runs a real tool (tools have side effects) yet meets the check a server makes before
// dispatching a call. Many servers let the first ones through unauthenticated and demand a token only
// for tools/call.
var probeCalls = []struct{ method, body string }{
	{"notifications/initialized", `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
	{"tools/list", `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`},
	{"tools/call", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"authkeeper-probe-nonexistent-tool","arguments":{}}}`},
}

// probeStepTimeout bounds each follow-up request: a server streaming forever must not hold the probe.
const probeStepTimeout = 10 * time.Second

// probeSession sends probeCalls in s and returns the first answer that is a 401 or 403 with a Bearer
// challenge. Any other outcome of a call — success, a JSON-RPC error, a network failure — moves on;
// none found is ok == false.
func (c *Client) probeSession(ctx context.Context, serverURL string, s session) (refusal, bool) {
	for _, call := range probeCalls {
		r, ok := c.probeCall(ctx, serverURL, s, call.method, call.body)
		if ok {
			return r, true
		}
	}
	return refusal{}, false
}

func (c *Client) probeCall(ctx context.Context, serverURL string, s session, method, body string) (refusal, bool) {
	ctx, cancel := context.WithTimeout(ctx, probeStepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL, strings.NewReader(body))
	if err != nil {
		return refusal{}, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
	}
	if s.version != "" {
		req.Header.Set("MCP-Protocol-Version", s.version)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return refusal{}, false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return refusal{}, false
	}
	if _, ok := BearerChallenge(resp.Header); !ok {
		return refusal{}, false
	}
	return refusal{method: method, status: resp.StatusCode, header: resp.Header}, true
}

// protocolVersion reads result.protocolVersion from an initialize answer, a JSON body or an SSE stream
// of them; "" when absent (the follow-ups then carry no MCP-Protocol-Version header).
func protocolVersion(contentType string, body []byte) string {
	var msgs [][]byte
	if strings.HasPrefix(strings.ToLower(contentType), "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), maxBody)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				msgs = append(msgs, []byte(d))
			}
		}
	} else {
		msgs = [][]byte{body}
	}
	for _, m := range msgs {
		var r struct {
			Result struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"result"`
		}
		if json.Unmarshal(m, &r) == nil && r.Result.ProtocolVersion != "" && len(r.Result.ProtocolVersion) < 32 {
			return r.Result.ProtocolVersion
		}
	}
	return ""
}

// closeSession ends the session an unauthenticated initialize may have opened (MCP Streamable HTTP).
// Failures are ignored: the session is the server's to expire.
func (c *Client) closeSession(ctx context.Context, serverURL, id string) {
	if id == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, serverURL, nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", id)
	if resp, err := c.http.Do(req); err == nil {
		resp.Body.Close()
	}
}
