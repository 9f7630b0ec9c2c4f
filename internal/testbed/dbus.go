package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Bus is a private D-Bus session bus run by a dbus-daemon the test owns. Its methods are safe for
// concurrent use.
type Bus struct {
	// Address is the bus address (unix:path=…), as DBUS_SESSION_BUS_ADDRESS holds it.
	Address string
	// Dir is a short private directory (0700) holding the socket and config; fixtures built on the bus
	// may put their own runtime files here.
	Dir string

	proc *Process
}

// busConfig is session.conf without <standard_session_servicedirs/>: no D-Bus activation. Debian's
// gnome-keyring ships org.freedesktop.secrets.service, so on the stock config a call to a stopped keyring
// would silently start a new daemon (with the bus's HOME) and a test of "keyring unavailable" could not fail.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// SessionBus starts a private session bus (like dbus-run-session, minus service activation), points
// DBUS_SESSION_BUS_ADDRESS at it with t.Setenv — so the test must not be parallel — and stops it in
// cleanup.
//
// godbus's dbus.SessionBus() caches one shared connection and only redials once that connection has
// noticed its bus is gone; the cleanup waits for that, so a fresh bus per test is safe.
func SessionBus(t testing.TB) *Bus {
	t.Helper()
	linuxOnly(t, "a private D-Bus session bus (over a unix socket)")
	Need(t, "dbus-daemon")
	// Not t.TempDir: a unix socket path is limited to 108 bytes and test names can be long.
	dir, err := os.MkdirTemp("", "tb-dbus-")
	if err != nil {
		t.Fatalf("session bus: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	conf := filepath.Join(dir, "session.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, dir)), 0o600); err != nil {
		t.Fatalf("session bus: %v", err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address")
	p := StartProcess(t, "dbus-daemon", cmd)
	b := &Bus{Address: "unix:" + p.WaitLine(t, "unix:", 10*time.Second), Dir: dir, proc: p}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", b.Address)
	t.Cleanup(func() {
		_ = p.Stop()
		forgetSharedConn(t)
	})
	return b
}

// Env returns the environment entries a child process needs to use this bus.
func (b *Bus) Env() []string {
	return []string{"DBUS_SESSION_BUS_ADDRESS=" + b.Address}
}

// Connect opens a private connection to the bus, closed in cleanup. It never touches godbus's shared
// session connection, which belongs to the code under test.
func (b *Bus) Connect(t testing.TB) *dbus.Conn {
	t.Helper()
	c, err := dbus.Connect(b.Address)
	if err != nil {
		t.Fatalf("connect to %s: %v", b.Address, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// WaitName waits up to timeout for name to have an owner on the bus.
func (b *Bus) WaitName(t testing.TB, name string, timeout time.Duration, exited <-chan struct{}) {
	t.Helper()
	c := b.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var has bool
		err := c.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
		if err == nil && has {
			return
		}
		select {
		case <-exited:
			t.Fatalf("owner of %s exited before claiming it", name)
		case <-ctx.Done():
			t.Fatalf("%s has no owner on %s after %v (last error: %v)", name, b.Address, timeout, err)
		case <-tick.C:
		}
	}
}

// forgetSharedConn waits until godbus's cached session connection, if any, has seen its bus close, so the
// next dbus.SessionBus() dials the next test's bus instead of returning a dead connection.
func forgetSharedConn(t testing.TB) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := dbus.SessionBus()
		if err != nil || !c.Connected() {
			return // no live cached connection: the next call redials
		}
		time.Sleep(10 * time.Millisecond) // polling a connection we do not own; it has no close channel
	}
	t.Errorf("godbus's shared session connection still open 5s after its bus stopped")
}
