package testbed

import (
	"fmt"
	"net"
	"testing"
)

// TestFreePortStaysOutOfTheEphemeralRange: on Linux every port FreePort returns lies below the range
// the kernel hands to outgoing connections and port-0 listeners, where none of them can take it before
// the program it is meant for binds it; and it can be bound.
func TestFreePortStaysOutOfTheEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	if lo == 0 {
		t.Skip("no /proc/sys/net/ipv4/ip_local_port_range here: FreePort lets the kernel pick")
	}
	if lo-minFreePort < 1024 {
		t.Skipf("the ephemeral range starts at %d: too little room below it, FreePort lets the kernel pick", lo)
	}
	seen := map[int]bool{}
	for range 20 {
		port := FreePort(t)
		if port < minFreePort || port >= lo {
			t.Fatalf("FreePort = %d; want it in [%d, %d), below the ephemeral range", port, minFreePort, lo)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("port %d from FreePort cannot be bound: %v", port, err)
		}
		l.Close()
		seen[port] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 draws gave %d distinct ports; want them spread at random", len(seen))
	}
}
