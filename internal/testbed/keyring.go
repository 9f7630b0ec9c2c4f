package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Secret Service names (https://specifications.freedesktop.org/secret-service-spec/latest/).
const (
	secretsName       = "org.freedesktop.secrets"
	secretsPath       = "/org/freedesktop/secrets"
	loginCollection   = "/org/freedesktop/secrets/collection/login"
	defaultCollection = "/org/freedesktop/secrets/aliases/default"
	keyringPassword   = "testbed-login-password"
)

// Keyring is a gnome-keyring-daemon serving the Secret Service on a private session bus, with a fresh
// login keyring in a private HOME. Safe for concurrent use.
type Keyring struct {
	// Bus is the session bus the daemon serves; DBUS_SESSION_BUS_ADDRESS points at it.
	Bus *Bus
	// Home is the daemon's private HOME; the keyring files live under Home/.local/share/keyrings.
	Home string

	mu   sync.Mutex
	proc *Process // the running daemon; replaced by Revive
}

// StartKeyring starts a Secret Service on a new private session bus. See KeyringOn. (Not named
// Keyring: that is the type.)
func StartKeyring(t testing.TB) *Keyring {
	t.Helper()
	return KeyringOn(t, SessionBus(t))
}

// KeyringOn starts `gnome-keyring-daemon --foreground --unlock --components=secrets` on bus, with a
// private HOME and XDG directories, feeding the login password on stdin so the login collection is
// created unlocked. It returns once org.freedesktop.secrets answers and the default collection is
// unlocked, and stops the daemon in cleanup.
func KeyringOn(t testing.TB, bus *Bus) *Keyring {
	t.Helper()
	linuxOnly(t, "gnome-keyring (a Secret Service on D-Bus)")
	Need(t, "gnome-keyring-daemon")
	k := &Keyring{Bus: bus, Home: t.TempDir()}
	k.start(t)
	return k
}

// start starts the daemon on k's bus and HOME (creating the login keyring there, or unlocking the one
// an earlier daemon left) and returns once its default collection is unlocked.
func (k *Keyring) start(t testing.TB) {
	t.Helper()
	run := filepath.Join(k.Bus.Dir, "run") // XDG_RUNTIME_DIR holds a socket: keep the path short
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatalf("keyring: %v", err)
	}
	cmd := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	cmd.Env = append(os.Environ(), k.Bus.Env()...)
	cmd.Env = append(cmd.Env,
		"HOME="+k.Home,
		"XDG_DATA_HOME="+filepath.Join(k.Home, ".local", "share"),
		"XDG_CONFIG_HOME="+filepath.Join(k.Home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(k.Home, ".cache"),
		"XDG_RUNTIME_DIR="+run,
	)
	cmd.Stdin = strings.NewReader(keyringPassword) // --unlock reads it up to EOF
	p := StartProcess(t, "gnome-keyring-daemon", cmd)
	k.mu.Lock()
	k.proc = p
	k.mu.Unlock()
	k.Bus.WaitName(t, secretsName, 15*time.Second, p.Done())
	// The name is claimed before the login keyring is loaded; wait until the collection is usable.
	c := k.Bus.Connect(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		locked, err := k.locked(c)
		if err == nil && !locked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyring: default collection not unlocked after 10s (locked=%v, err=%v)", locked, err)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's state
	}
}

func (k *Keyring) process() *Process {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.proc
}

// Revive starts the daemon again, on the same bus and keyring files, if it has exited (waiting up to
// two seconds for a dying one to go), and reports whether it had. gnome-keyring-daemon 42 has been seen
// to abort on a GLib assertion ("invoke_get_property_in_idle_cb: assertion failed") when resumed after a
// SIGSTOP that left calls queued; its items are on disk, so the revived daemon serves what it held. The
// abort is logged with the daemon's output; a test calls Revive only where the daemon's death is not
// what it tests.
func (k *Keyring) Revive(t testing.TB) bool {
	t.Helper()
	select {
	case <-k.process().Done():
	case <-time.After(2 * time.Second):
		return false
	}
	t.Logf("gnome-keyring-daemon exited (%v); starting it again on the same keyring", k.process().ExitErr())
	k.start(t)
	return true
}

// Stop stops the daemon; afterwards org.freedesktop.secrets has no owner (the bus cannot activate a
// new one), which is what a headless machine without a Secret Service looks like.
func (k *Keyring) Stop(t testing.TB) {
	t.Helper()
	_ = k.process().Stop()
}

// Freeze stops the daemon with SIGSTOP until cleanup: it keeps its bus name but never answers, like a
// Secret Service waiting on an unlock prompt nobody sees.
func (k *Keyring) Freeze(t testing.TB) {
	t.Helper()
	p := k.process()
	if err := p.suspend(); err != nil {
		t.Fatalf("freeze keyring: %v", err)
	}
	t.Cleanup(func() { _ = p.resume() })
}

// Lock locks the login collection through the Secret Service's own Lock method, as the screen locker
// or `seahorse` would, and returns once both the login collection and the default alias read as
// locked. Unlocking it again would need a user at a prompt.
func (k *Keyring) Lock(t testing.TB) {
	t.Helper()
	c := k.Bus.Connect(t)
	lock := func() error {
		var locked []dbus.ObjectPath
		var prompt dbus.ObjectPath
		if err := c.Object(secretsName, secretsPath).Call("org.freedesktop.Secret.Service.Lock", 0,
			[]dbus.ObjectPath{loginCollection}).Store(&locked, &prompt); err != nil {
			return err
		}
		if prompt != "/" {
			// Nobody could answer a prompt here; gnome-keyring locks without one.
			return fmt.Errorf("locking asks for a prompt (%s)", prompt)
		}
		return nil
	}
	if err := lock(); err != nil {
		t.Fatalf("lock keyring: %v", err)
	}
	// The daemon answers Lock once it has locked, but reads of Locked through another object path (the
	// alias), or while it is slow under load, have been seen to lag; a read that still says unlocked
	// locks again (Lock is idempotent) until the deadline.
	k.waitLocked(t, c, true, "lock keyring", lock)
}

// Unlock unlocks the login collection with its password, as the user answering the unlock prompt
// would, and returns once it reads as unlocked. It goes through gnome-keyring's internal interface,
// which takes the password over a plain Secret Service session instead of showing a prompt (there is
// no one to answer it here).
func (k *Keyring) Unlock(t testing.TB) {
	t.Helper()
	c := k.Bus.Connect(t)
	svc := c.Object(secretsName, secretsPath)
	var out dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call("org.freedesktop.Secret.Service.OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		t.Fatalf("unlock keyring: open session: %v", err)
	}
	secret := struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}{session, []byte{}, []byte(keyringPassword), "text/plain"}
	unlock := func() error {
		return svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0,
			dbus.ObjectPath(loginCollection), secret).Err
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock keyring: %v", err)
	}
	k.waitLocked(t, c, false, "unlock keyring", unlock)
}

// lockSettle bounds how long Lock and Unlock wait for the collection to read as they left it.
const lockSettle = 10 * time.Second

// waitLocked polls the Locked property of the login collection and of the default alias until both
// read want, calling again after every read that does not (its error, say for a collection that got
// there meanwhile, is only reported if the deadline passes), and fails the test with what it last
// read once lockSettle has passed.
func (k *Keyring) waitLocked(t testing.TB, c *dbus.Conn, want bool, what string, again func() error) {
	t.Helper()
	deadline := time.Now().Add(lockSettle)
	var retryErr error
	for {
		login, lerr := lockedAt(c, loginCollection)
		alias, aerr := lockedAt(c, defaultCollection)
		if lerr == nil && aerr == nil && login == want && alias == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: after %v the login collection reads locked=%v (err=%v), the default alias locked=%v (err=%v); "+
				"want locked=%v (last retry: %v)", what, lockSettle, login, lerr, alias, aerr, want, retryErr)
		}
		time.Sleep(50 * time.Millisecond) // polling another process's state
		retryErr = again()
	}
}

// Locked reports whether the default collection is locked.
func (k *Keyring) Locked(t testing.TB) bool {
	t.Helper()
	locked, err := k.locked(k.Bus.Connect(t))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	return locked
}

func (k *Keyring) locked(c *dbus.Conn) (bool, error) { return lockedAt(c, defaultCollection) }

// lockedAt reads the Locked property of the collection at path.
func lockedAt(c *dbus.Conn, path dbus.ObjectPath) (bool, error) {
	v, err := c.Object(secretsName, path).GetProperty("org.freedesktop.Secret.Collection.Locked")
	if err != nil {
		return false, err
	}
	locked, ok := v.Value().(bool)
	if !ok {
		return false, fmt.Errorf("Locked of %s is a %T", path, v.Value())
	}
	return locked, nil
}
