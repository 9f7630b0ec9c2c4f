// Package startup keeps the garbage collector off while the program's packages initialize, and main
// turns it back on (Resume) before it does anything else.
//
// Every `authkeeper bridge` an agent session starts, and every CLI command, pays for package
// initialization: fyne's, etcd's and gRPC's protocol descriptors, and more, allocate several MiB
// before main runs, enough for the collector to run two or three cycles over memory that is nearly all
// still live. Skipping them takes about a tenth off the start-up of a command (`authkeeper version`:
// about 5 ms of 55 on the benchmark machine, see docs/bench-bridge.md). Go initializes packages in
// import-path order as their imports allow, so this package, which imports only runtime/debug, runs
// before every package whose path sorts after github.com/authkeeper — etcd (go.etcd.io), gRPC and
// protobuf (google.golang.org), golang.org/x — though not before those that sort earlier (fyne.io).
package startup

import "runtime/debug"

// gcPercent is the collector's setting when the program started (GOGC), restored by Resume.
var gcPercent = debug.SetGCPercent(-1)

// Resume turns the collector back on as GOGC had it. main calls it first; until then nothing is
// collected.
func Resume() { debug.SetGCPercent(gcPercent) }
