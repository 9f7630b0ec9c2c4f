// Package soak holds `make soak`: a compressed six-hour run of the real authkeeper binary against the
// test bench's real peers (oidc-provider, the Go and TypeScript MCP SDKs, gnome-keyring), followed by
// chaos and security cases, each with its own pass rule. It writes docs/soak-report.md and
// docs/soak-report.json and fails on any miss.
//
// The tests are behind the `soak` build tag so that `make test` never runs them:
//
//	go test -tags soak -run TestSoak -timeout 20m ./internal/soak/
//
// AUTHKEEPER_SOAK_DURATION (default 10m) sets the length of the main run; AUTHKEEPER_SOAK_REPORT names
// the directory the report is written to (default: none, the report is only logged).
package soak
