//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keychain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"
)

// diagnose turns a failed go-keyring call into ErrUnavailable or ErrLocked with the cause and the fix.
// go-keyring's errors do not say which (a locked collection is a plain "failed to unlock correct
// collection"), so diagnose asks the bus directly on a private connection: is there a session bus, does
// anyone own org.freedesktop.secrets, is the default collection locked?
func diagnose(cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addr := sessionBusAddress()
	if addr == "" {
		return fmt.Errorf("%w: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset): run authkeeper in a desktop session with gnome-keyring, or choose --store file: %w", ErrUnavailable, cause)
	}
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: cannot reach the D-Bus session bus at %s (%v): run authkeeper in a desktop session with gnome-keyring, or choose --store file: %w", ErrUnavailable, addr, err, cause)
	}
	defer conn.Close()
	var owned bool
	err = conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.secrets").Store(&owned)
	if err == nil && !owned {
		return fmt.Errorf("%w: no Secret Service on the session bus: install and unlock gnome-keyring (or enable KeePassXC's Secret Service), or choose --store file: %w", ErrUnavailable, cause)
	}
	var locked bool
	if err == nil {
		var v dbus.Variant
		err = conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets/aliases/default").CallWithContext(ctx,
			"org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.Secret.Collection", "Locked").Store(&v)
		locked, _ = v.Value().(bool)
	}
	if err == nil && locked {
		return fmt.Errorf("%w: the default keyring is locked: unlock it (log in to the desktop again, or open Passwords and Keys), then retry: %w", ErrLocked, cause)
	}
	if errors.Is(cause, errTimeout) {
		return fmt.Errorf("%w: the Secret Service did not answer (an unlock prompt may be waiting): answer it, or restart gnome-keyring: %w", ErrUnavailable, cause)
	}
	return fmt.Errorf("%w: the Secret Service failed: %w", ErrUnavailable, cause)
}

// preflight refuses to call go-keyring when there is no session bus to find. Without it godbus would
// "autolaunch" one through dbus-launch — a bus with service activation, which then starts a
// gnome-keyring-daemon whose login keyring nobody unlocked (seen in this package's tests): a stray
// daemon and a misleading "failed to unlock" instead of the real cause.
func preflight() error {
	if sessionBusAddress() == "" {
		return diagnose(errors.New("DBUS_SESSION_BUS_ADDRESS unset and no $XDG_RUNTIME_DIR/bus"))
	}
	return nil
}

// sessionBusAddress finds the session bus as godbus does, minus autolaunch (which could start a bus).
func sessionBusAddress() string {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return a
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "bus")); err == nil {
			return "unix:path=" + filepath.Join(dir, "bus")
		}
	}
	return ""
}

// locked reports whether the Secret Service's default collection is locked, asking the bus directly:
// unlike reading an item, it never shows an unlock prompt. False when it cannot tell.
func locked() bool {
	addr := sessionBusAddress()
	if addr == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return false
	}
	defer conn.Close()
	var v dbus.Variant
	err = conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets/aliases/default").CallWithContext(ctx,
		"org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.Secret.Collection", "Locked").Store(&v)
	is, _ := v.Value().(bool)
	return err == nil && is
}
