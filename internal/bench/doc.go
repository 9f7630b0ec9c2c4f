// Package bench measures what authkeeper costs, against the test bench's real peers
// (internal/testbed): the oidc-provider authorization server, Go SDK MCP servers, the Go SDK client,
// gnome-keyring, Xvfb, and the real authkeeper binary. `make bench` runs each benchmark in a process of
// its own and writes its report to docs/:
//
//   - TestProxyBenchmark (bench-proxy.md): the latency the loopback proxy adds to a tools/call and the
//     throughput it allows, at 1 and 50 concurrent clients, in interleaved rounds against the same call
//     made directly to the server, judged on the median over rounds and its interquartile range; two
//     reference points for one more hop (a bare reverse proxy, and a byte relay that parses nothing);
//     the latency of the first SSE event; CPU profiles of the proxied rounds;
//   - TestBridgeBenchmark (bench-bridge.md, bench-latency.png): a tools/call round trip over stdio
//     through `authkeeper bridge` and through the pinned npm mcp-remote given the same token, next to
//     direct and proxied calls and the stdio hop alone (instantMain), all driven by one client process
//     of their own (this test binary run again, see clientEnv); the bridge is the command
//     `authkeeper clients` writes from an install with the headless build next to the tray binary
//     (installedBridge); start-up, also from the tray binary, ten sessions at once, a CPU profile and
//     the system calls;
//   - TestFootprintBenchmark (bench-footprint.md): idle CPU and resident memory of `authkeeper serve`
//     and of the tray app, each with 10 signed-in servers;
//   - TestSchedulerScaleBenchmark (bench-scale.md): 1,000 servers in the engine's scheduler — heap,
//     time to plan, CPU per idle hour.
//
// Without AUTHKEEPER_BENCH_REPORT each runs a short smoke version and writes nothing, so `go test ./...`
// stays quick. See each report for its method and figures. The tests are Linux-only (//go:build
// linux): they read /proc and getrusage(2), and start Xvfb and gnome-keyring.
package bench
