package keychain

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// The keyring and lock tests re-exec this test binary as a child to get a real second process: a writer
// that is killed between the chunk writes and the manifest switch, concurrent CLI-like writers, and a
// lock holder. childEnv selects the role; KC_SERVICE names the keychain service (default "authkeeper").
// On Linux the child inherits DBUS_SESSION_BUS_ADDRESS and so the test's keyring; on Windows every
// process of the user shares Credential Manager.
const childEnv = "AUTHKEEPER_KEYCHAIN_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "crash":
		os.Exit(crashChild())
	case "writer":
		os.Exit(writerChild())
	case "locker":
		os.Exit(lockerChild())
	default:
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", os.Getenv(childEnv))
		os.Exit(2)
	}
}

func childStore(afterChunks func()) (*KeyringStore, error) {
	chunk, err := strconv.Atoi(os.Getenv("KC_CHUNK"))
	if err != nil {
		return nil, err
	}
	return NewKeyringStore(KeyringConfig{Service: os.Getenv("KC_SERVICE"), ChunkSize: chunk,
		LockPath: os.Getenv("KC_LOCK"), afterChunks: afterChunks})
}

// crashChild puts a record of KC_LEN bytes and is killed by its own hook before the manifest switch:
// os.Process.Kill is SIGKILL on Unix and TerminateProcess (exit status 1) on Windows, so no deferred
// or exit code runs, as in a crash. See killedByItsHook.
func crashChild() int {
	s, err := childStore(func() {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Kill()
		}
		select {}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n, _ := strconv.Atoi(os.Getenv("KC_LEN"))
	rec := testRecord(n)
	rec.RefreshToken = "SECRETrefresh-crashed"
	_, err = s.Put(os.Getenv("KC_NAME"), rec)
	fmt.Fprintf(os.Stderr, "Put returned (%v) instead of dying\n", err)
	return 3
}

// writerChild puts KC_COUNT records and prints the revision of each.
func writerChild() int {
	s, err := childStore(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n, _ := strconv.Atoi(os.Getenv("KC_COUNT"))
	for i := range n {
		rec := testRecord(300)
		rec.RefreshToken = fmt.Sprintf("SECRETrefresh-%d-%d", os.Getpid(), i)
		got, err := s.Put(os.Getenv("KC_NAME"), rec)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(got.Revision)
	}
	return 0
}

// lockerChild takes the lock at KC_LOCK, prints "locked", and holds it until its stdin closes.
func lockerChild() int {
	l, err := LockFile(os.Getenv("KC_LOCK"), time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := l.Unlock(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child returns a command running this test binary in role, with env added.
func child(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s child stderr:\n%s", role, stderr.String())
		}
	})
	return cmd
}
