//go:build linux

package bench

// bridgeBefore is the report's "Before this change" section, included verbatim: the bridge's figures
// before issue 16 reworked it, for comparison with the figures above. They were measured once, by hand,
// not by `make bench`: this benchmark (same harness, same machine, same day, 2026-12-02 11:06 UTC) run
// with AUTHKEEPER_BIN pointing at a build of f025503, the last commit before the rework.
const bridgeBefore = `The same benchmark with the bridge of f025503 (built from that commit; everything else — harness,
engine, proxy, server — as above), run once on 2026-12-02 at 11:06 UTC on this machine:

| figure | f025503 | |
|---|---|---|
| bridge p50 − proxy p50 (median over rounds) | 0.756 ms (IQR 0.674 – 0.811) | pooled: bridge 1.624 ms, proxy 0.874 ms |
| bridge p99 − proxy p99 | 2.260 ms (IQR 1.765 – 2.798) | |
| best mcp-remote p50 / bridge p50 | 1.56× (IQR 1.45 – 1.82) | |
| start-up, spawn → initialize result | 52.7 ms (IQR 47.7 – 56.1) | |
| ten bridges at once: p50, total VmRSS | 20.8 ms, 391 MiB | |
| system calls per request | 44.2 | futex 15.8, nanosleep 11.5, epoll_pwait 5.9, read 5.7, write 3.6 |

Where that time went, from a ` + "`perf record -g`" + ` of that bridge under the same client (its Go frames;
the rest is the kernel switching threads): 28% of its samples were in the scheduler's
` + "`finish_task_switch`" + ` — threads parking and waking — with the stacks naming
` + "`net/http.(*persistConn).writeLoop`" + ` and ` + "`readLoop`" + ` (9% and 7%: net/http's Transport hands each
request to a writer goroutine and each answer to a reader goroutine), the Go SDK's
` + "`streamableClientConn.Write`" + ` → ` + "`handleSSE`" + ` goroutine and its channel to the relay goroutine, the SDK's
stdio reader goroutine and its channel, and ` + "`runtime.stoplockedm`" + `/` + "`startlockedm`" + ` (the relay loop
ran on the main goroutine, which fyne's driver locks to the main thread at init, so each of its
wake-ups was a thread switch). Every message was decoded into the SDK's types and encoded again
twice (stdin → SDK → HTTP body, SSE event → SDK → stdout), and every request with a body waited a
round trip for ` + "`100 Continue`" + ` before sending it.

What changed: the bridge relays bytes — a client line is a POST body, an answer (a JSON body or an
SSE event) is a line — decoding only the envelope (id, method); the request is written by the
goroutine that read it from stdin, and the answer read by one goroutine per call, on the bridge's own
HTTP/1.1 connections (no Transport goroutines); the read loop runs off the locked main thread; and
` + "`Expect: 100-continue`" + ` gave way to the proxy's receipt (` + "`102 Processing`" + `, written before it forwards),
which keeps the rule that a call the old owner may have forwarded is never sent twice without a round
trip. Measured step by step with an external client before the rework (one run each, so only
indicative): dropping the 100-continue wait alone took about 0.2 ms off the bridge's p50; its own
connections instead of net/http's Transport, 0.1–0.2 ms more; relaying bytes instead of the SDK's
transports, the rest.`
