package testbed

import (
	"testing"

	"github.com/godbus/dbus/v5"
)

func nameOwned(t *testing.T, c *dbus.Conn, name string) bool {
	t.Helper()
	var has bool
	if err := c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil {
		t.Fatal(err)
	}
	return has
}

// Code under test uses godbus's cached dbus.SessionBus(); a fresh bus per test must get a fresh
// connection, not the previous test's.
func TestSessionBusPerTestMovesGodbusSharedConnection(t *testing.T) {
	var first *dbus.Conn
	for i, name := range []string{"org.authkeeper.TestOne", "org.authkeeper.TestTwo"} {
		t.Run(name, func(t *testing.T) {
			bus := SessionBus(t)
			shared, err := dbus.SessionBus()
			if err != nil {
				t.Fatalf("dbus.SessionBus: %v", err)
			}
			if i == 0 {
				first = shared
			} else if shared == first {
				t.Fatal("dbus.SessionBus returned the previous test's connection")
			}
			if _, err := shared.RequestName(name, dbus.NameFlagDoNotQueue); err != nil {
				t.Fatal(err)
			}
			c := bus.Connect(t)
			if !nameOwned(t, c, name) {
				t.Errorf("%s, claimed on the shared connection, is not on this test's bus", name)
			}
			if i == 1 && nameOwned(t, c, "org.authkeeper.TestOne") {
				t.Error("the first test's name is on the second test's bus")
			}
		})
	}
}

func TestKeyringServesSecretServiceUntilStopped(t *testing.T) {
	k := StartKeyring(t)
	c := k.Bus.Connect(t)
	if k.Locked(t) {
		t.Fatal("fresh keyring is locked")
	}
	k.Lock(t)
	if !k.Locked(t) {
		t.Fatal("Lock did not lock the default collection")
	}
	k.Unlock(t)
	if k.Locked(t) {
		t.Fatal("Unlock did not unlock the default collection")
	}
	k.Stop(t)
	if nameOwned(t, c, secretsName) {
		t.Error("org.freedesktop.secrets still owned after Stop (was it re-activated?)")
	}
}
