package main

import (
	"github.com/authkeeper/authkeeper/internal/e2e"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestTwoProcessesStartedAtOnceShareOneOwner starts two engines at the same moment. Exactly one takes
// the owner lock and serves; the other refuses to start a second refresher. Other processes — here a
// CLI taking a busy lease — are then served by the one owner over the control API.
func TestTwoProcessesStartedAtOnceShareOneOwner(t *testing.T) {
	bin := e2e.MustBinary(t)
	testbed.StartKeyring(t)
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "akrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + rt,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_STATE_HOME=" + filepath.Join(home, ".state"),
		"DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")}

	var procs []*testbed.Process
	for _, name := range []string{"first", "second"} {
		cmd := exec.Command(bin, "serve", "--proxy-addr", "127.0.0.1:0")
		cmd.Env = env
		procs = append(procs, testbed.StartProcess(t, "serve "+name, cmd))
	}
	// One of them exits, refusing to be a second owner; the other keeps serving.
	var owner, refused *testbed.Process
	select {
	case <-procs[0].Done():
		owner, refused = procs[1], procs[0]
	case <-procs[1].Done():
		owner, refused = procs[0], procs[1]
	case <-time.After(20 * time.Second):
		t.Fatalf("both engines still running 20 s after starting together:\n%s\n---\n%s", procs[0].Output(), procs[1].Output())
	}
	if !strings.Contains(refused.Output(), "another authkeeper is already running") || refused.ExitErr() == nil {
		t.Errorf("the second engine did not refuse clearly (%v):\n%s", refused.ExitErr(), refused.Output())
	}
	owner.WaitLine(t, "  control:", 20*time.Second)

	// A third process is served by the owner: its lease shows in the owner's status.
	busy := exec.Command(bin, "busy", "start", "--id", "turn-1", "--label", "third process")
	busy.Env = env
	if out, err := busy.CombinedOutput(); err != nil {
		t.Fatalf("busy start: %v\n%s", err, out)
	}
	st := exec.Command(bin, "status")
	st.Env = env
	out, err := st.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "busy: turn-1 (third process)") {
		t.Errorf("owner's status does not list the third process's lease (%v):\n%s", err, out)
	}
	select {
	case <-owner.Done():
		t.Errorf("the owner exited:\n%s", owner.Output())
	default:
	}
}
