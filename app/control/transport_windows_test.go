package control

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Microsoft/go-winio"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
	"golang.org/x/sys/windows"
)

// TestControlAPIAnswersStatusOverTheNamedPipe: the engine's control API listens on a named pipe named
// by PipeName's prefix and a random suffix, records that name in the owner lock, and Remote's calls
// reach it there, by the name or through the owner lock (NewOwnerRemote).
func TestControlAPIAnswersStatusOverTheNamedPipe(t *testing.T) {
	paths := newPaths(t)
	eng, r := startOwnerAt(t, paths)
	user, err := keychain.UserSID()
	if err != nil {
		t.Fatal(err)
	}
	prefix := engine.PipeName(paths.RuntimeDir, user)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-[0-9a-f]{32}$`).MatchString(eng.ControlAddr()) {
		t.Errorf("control address %q, want %s-<32 hex>", eng.ControlAddr(), prefix)
	}
	if got := engine.OwnerSocket(paths); got != eng.ControlAddr() {
		t.Errorf("the owner lock records %q, want %q", got, eng.ControlAddr())
	}
	ctx := context.Background()
	for i, r := range []*Remote{r, r, NewOwnerRemote(paths)} { // each connection is a new instance of the pipe
		if _, err := r.Status(ctx); err != nil {
			t.Fatalf("status #%d: %v", i+1, err)
		}
	}
	if h, err := r.Health(ctx); err != nil || h.Temporary {
		t.Errorf("health %+v, %v", h, err)
	}
}

// TestControlPipeIsOwnedByTheUserAndItsDACLGrantsNoOneElse: the pipe's owner is the user and its DACL
// is protected and holds one entry, granting the user: no other user's SID (nor Everyone, SYSTEM or
// Administrators) is in it.
func TestControlPipeIsOwnedByTheUserAndItsDACLGrantsNoOneElse(t *testing.T) {
	eng, _ := startOwner(t)
	user, err := keychain.UserSID()
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(context.Background(), eng.ControlAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sd, err := windows.GetSecurityInfo(windows.Handle(c.(interface{ Fd() uintptr }).Fd()), windows.SE_KERNEL_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("control pipe's security descriptor: %s", sd)
	acl, err := keychain.ReadACL(sd)
	if err != nil {
		t.Fatal(err)
	}
	if acl.Owner != user {
		t.Errorf("owner %s, want %s", acl.Owner, user)
	}
	if !acl.HasDACL || !acl.Protected {
		t.Errorf("DACL present %v, protected %v: want a protected DACL", acl.HasDACL, acl.Protected)
	}
	if len(acl.Entries) != 1 || acl.Entries[0].Type != keychain.AceAllowed || acl.Entries[0].SID != user {
		t.Errorf("the DACL holds %+v, want one allow entry, for the user %s", acl.Entries, user)
	}
}

// TestRemoteRefusesAPipeSomeoneElseOwns: a pipe at the control address that another principal owns
// (one that took the name first) gets no request: the call fails with ErrNotYours, not with "not
// running", and the squatter's listener never sees a byte.
func TestRemoteRefusesAPipeSomeoneElseOwns(t *testing.T) {
	name := `\\.\pipe\authkeeper-test-squatter-` + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	// Owned by Administrators: a principal other than the user that an administrator's token may name
	// as owner (naming another user needs the restore privilege).
	l, err := winio.ListenPipe(name, &winio.PipeConfig{SecurityDescriptor: "O:BAD:P(A;;GA;;;WD)"})
	if err != nil {
		// A token without the Administrators group (or with it filtered by UAC) may not name it as owner.
		t.Skipf("cannot make a pipe owned by Administrators from this account, so no one else's pipe to test against: %v", err)
	}
	defer l.Close()
	spendFirstInstance(name)
	got := make(chan int, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1)
		n, _ := c.Read(buf)
		got <- n
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = NewRemote(name).Status(ctx)
	if !errors.Is(err, ErrNotYours) || errors.Is(err, ErrNoAnswer) {
		t.Fatalf("status from someone else's pipe: %v; want ErrNotYours", err)
	}
	t.Logf("refused: %v", err)
	select {
	case n := <-got:
		if n > 0 {
			t.Errorf("the squatter read %d bytes", n)
		}
	case <-time.After(time.Second):
		t.Error("the squatter's pipe was not even connected: the owner check did not run")
	}
}

// TestRemoteCallsAPipeThatShutsTheUserOutNotYours: a pipe at the control address whose DACL does not
// admit the user (someone else's, made to shut the user out) fails the call with ErrNotYours, not as
// "not running": the caller must not go on as if no owner ran.
func TestRemoteCallsAPipeThatShutsTheUserOutNotYours(t *testing.T) {
	name := `\\.\pipe\authkeeper-test-shut-out-` + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	l, err := winio.ListenPipe(name, &winio.PipeConfig{SecurityDescriptor: "D:P(A;;GA;;;SY)"}) // SYSTEM alone
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	spendFirstInstance(name)
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := winio.DialPipeContext(ctx, name); err == nil {
		c.Close()
		t.Skip("this system let the user open a pipe whose DACL grants SYSTEM alone (Wine does not check pipe DACLs), so there is no refusal to map")
	} else if !errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Fatalf("dial a pipe that shuts the user out: %v, want access denied", err)
	}
	_, err = NewRemote(name).Status(ctx)
	if !errors.Is(err, ErrNotYours) || errors.Is(err, ErrNoAnswer) {
		t.Fatalf("status from a pipe that shuts the user out: %v; want ErrNotYours", err)
	}
	t.Logf("refused: %v", err)
}

// TestEachOwnerListensOnAPipeOfItsOwnAndOwnerRemoteFollows: an owner that starts after another one
// stopped, with the same directories, listens on a pipe name of its own, and a client made with
// NewOwnerRemote before it started reaches it through the owner lock.
func TestEachOwnerListensOnAPipeOfItsOwnAndOwnerRemoteFollows(t *testing.T) {
	paths := newPaths(t)
	r := NewOwnerRemote(paths)
	first, _ := startOwnerAt(t, paths)
	ctx := context.Background()
	if _, err := r.Status(ctx); err != nil {
		t.Fatalf("status from the first owner: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, _ := startOwnerAt(t, paths)
	if first.ControlAddr() == second.ControlAddr() {
		t.Errorf("both owners listen on %s", first.ControlAddr())
	}
	if _, err := r.Status(ctx); err != nil {
		t.Fatalf("status from the second owner: %v", err)
	}
}
