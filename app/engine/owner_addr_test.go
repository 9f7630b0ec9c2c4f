package engine

import (
	"path/filepath"
	"regexp"
	"runtime"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestOwnerRecordsItsControlAddressAndClientsReadItBack: before any owner ran, OwnerSocket names the
// default address; an owner records the address it listens on in the owner lock and OwnerSocket reads
// it back, also after the owner let go (the next owner records its own). On Unix every engine of one
// runtime directory listens on its one socket; on Windows each picks a pipe name of its own, the
// prefix and 32 random hex digits, which no other user can compute before it exists.
func TestOwnerRecordsItsControlAddressAndClientsReadItBack(t *testing.T) {
	home := testbed.TempDir(t)
	p := Paths{ConfigDir: filepath.Join(home, "config"), StateDir: filepath.Join(home, "state"), RuntimeDir: filepath.Join(home, "run")}
	first, err := newControlAddr(p)
	if err != nil {
		t.Fatal(err)
	}
	second, err := newControlAddr(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		want := regexp.MustCompile(`^` + regexp.QuoteMeta(defaultControlAddr(p)) + `-[0-9a-f]{32}$`)
		if !want.MatchString(first) || !want.MatchString(second) || first == second {
			t.Errorf("pipe names %q and %q, want two different %s", first, second, want)
		}
	} else if want := filepath.Join(p.RuntimeDir, "control.sock"); first != want || second != want {
		t.Errorf("control sockets %q and %q, want %q", first, second, want)
	}

	if got := OwnerSocket(p); got != defaultControlAddr(p) {
		t.Errorf("before any owner, OwnerSocket = %q, want %q", got, defaultControlAddr(p))
	}
	for _, addr := range []string{first, second} {
		l, err := AcquireOwner(p, addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := OwnerSocket(p); got != addr {
			t.Errorf("while owning, OwnerSocket = %q, want the recorded %q", got, addr)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
		if got := OwnerSocket(p); got != addr {
			t.Errorf("after the owner let go, OwnerSocket = %q, want the last recorded %q", got, addr)
		}
	}
}
