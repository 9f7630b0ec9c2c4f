package keychain

import (
	"bufio"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestLockFileHeldByAnotherProcessReportsErrLockHeld: the owner lock is taken with timeout 0, and the
// app branches on ErrLockHeld to say another authkeeper is running. A timeout of 0 must try once, not
// mean a default wait.
func TestLockFileHeldByAnotherProcessReportsErrLockHeld(t *testing.T) {
	path := filepath.Join(testbed.TempDir(t), "owner.lock")
	cmd := child(t, "locker", "KC_LOCK="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("locker child: %q, %v", line, err)
	}
	for _, timeout := range []time.Duration{0, -time.Second, 100 * time.Millisecond} {
		start := time.Now()
		l, err := LockFile(path, timeout)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrLockHeld) {
			if l != nil {
				_ = l.Unlock()
			}
			t.Fatalf("LockFile(timeout %v) while another process holds it: %v, want ErrLockHeld", timeout, err)
		}
		if elapsed < timeout || elapsed > max(timeout, 0)+time.Second {
			t.Errorf("LockFile(timeout %v) gave up after %v", timeout, elapsed)
		}
	}
	stdin.Close() // the child unlocks and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("locker child: %v", err)
	}
	l, err := LockFile(path, 0)
	if err != nil {
		t.Fatalf("LockFile after the holder exited: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}
