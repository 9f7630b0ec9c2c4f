package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxSignIns bounds the sign-ins the adapter does after `add` when authkeeper asks for one: a
// patient person. Stopping a futile step-up loop (auth/scope-retry-limit) is authkeeper's job; this
// bound only keeps a broken one from running until the suite's timeout.
const maxSignIns = 3

// protocolVersion is the newest revision conformance 0.1.16 knows. The Go SDK would otherwise open
// with 2026-07-28's server/discover, which the suite's servers do not implement.
const protocolVersion = "2025-11-25"

// toolArgs are the arguments of the suite's tools that take any.
var toolArgs = map[string]map[string]any{"add_numbers": {"a": 5, "b": 3}}

// useServer connects to the server through the proxy at proxyURL, lists its tools and calls each one.
// When authkeeper answers that a sign-in is needed, signIn is run and the step retried.
func useServer(ctx context.Context, proxyURL string, signIn func(context.Context) error) error {
	signIns := 0
	retry := func(step string, f func() error) error {
		for {
			err := f()
			if err == nil {
				return nil
			}
			if !needsSignIn(err) || signIns == maxSignIns {
				return fmt.Errorf("%s: %w%s", step, err, errorData(err))
			}
			signIns++
			logf("%s: authkeeper asks for a sign-in (%v); signing in (%d of at most %d)", step, err, signIns, maxSignIns)
			if err := signIn(ctx); err != nil {
				return err
			}
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "authkeeper-conformance-adapter", Version: "1.0.0"},
		&mcp.ClientOptions{ElicitationHandler: acceptDefaults})
	var cs *mcp.ClientSession
	err := retry("initialize", func() (err error) {
		cs, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: proxyURL},
			&mcp.ClientSessionOptions{ProtocolVersion: protocolVersion})
		return err
	})
	if err != nil {
		return err
	}
	defer cs.Close()
	var tools *mcp.ListToolsResult
	if err := retry("tools/list", func() (err error) { tools, err = cs.ListTools(ctx, nil); return err }); err != nil {
		return err
	}
	for _, tool := range tools.Tools {
		args := toolArgs[tool.Name]
		if args == nil {
			args = map[string]any{}
		}
		var res *mcp.CallToolResult
		if err := retry("tools/call "+tool.Name, func() (err error) {
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: tool.Name, Arguments: args})
			return err
		}); err != nil {
			return err
		}
		text, _ := json.Marshal(res.Content)
		logf("tools/call %s: isError=%v %.300s", tool.Name, res.IsError, text)
	}
	return nil
}

// acceptDefaults accepts every elicitation with empty content; the SDK fills in the requested schema's
// defaults (SEP-1034), which elicitation-sep1034-client-defaults checks.
func acceptDefaults(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
}

// authFailureCode is the JSON-RPC error code of authkeeper's auth_failure errors (docs/proxy.md).
const authFailureCode = -32050

// errorData returns the data of a JSON-RPC error (authkeeper's auth_failure says why), or "".
func errorData(err error) string {
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		return ""
	}
	return fmt.Sprintf(" (code %d, data %s)", we.Code, we.Data)
}

// needsSignIn reports whether err is authkeeper's auth_failure with subtype sign_in_required.
func needsSignIn(err error) bool {
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != authFailureCode {
		return false
	}
	var data struct {
		Subtype string `json:"subtype"`
	}
	return json.Unmarshal(we.Data, &data) == nil && data.Subtype == "sign_in_required"
}
