package control

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// TestControlAPIAnswersStatusOverTheNamedPipe: the engine's control API listens on the named pipe
// PipeName derives, and Remote's calls reach it there.
func TestControlAPIAnswersStatusOverTheNamedPipe(t *testing.T) {
	eng, r := startOwner(t)
	if !strings.HasPrefix(eng.ControlAddr(), `\\.\pipe\authkeeper-`) {
		t.Errorf("control address %q, want a pipe \\\\.\\pipe\\authkeeper-…", eng.ControlAddr())
	}
	ctx := context.Background()
	for i := range 3 { // more than one connection: each is a new instance of the pipe
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
	user, err := currentUserSID()
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
	if owner, _, err := sd.Owner(); err != nil || owner.String() != user {
		t.Errorf("owner %v (%v), want %s", owner, err, user)
	}
	if ctl, _, err := sd.Control(); err != nil || ctl&windows.SE_DACL_PROTECTED == 0 {
		t.Errorf("control flags %#x (%v): the DACL is not protected", ctl, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("DACL %v, %v", dacl, err)
	}
	var sids []string
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			t.Fatal(err)
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE {
			t.Errorf("entry %d is of type %d, want an allow entry", i, ace.Header.AceType)
			continue
		}
		sids = append(sids, (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String())
	}
	if len(sids) != 1 || sids[0] != user {
		t.Errorf("the DACL grants %v, want only the user %s", sids, user)
	}
}

// TestRemoteRefusesAPipeSomeoneElseOwns: a pipe at the control address that another principal owns
// (one that took the name first) gets no request: the call fails with errNotYours, not with "not
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
	if !errors.Is(err, errNotYours) || errors.Is(err, errNotRunning) {
		t.Fatalf("status from someone else's pipe: %v; want errNotYours", err)
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
