//go:build unix

package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// newProcessGroup makes cmd the leader of a new process group, so a signal reaches its children too
// (node's workers, wrangler's workerd).
func newProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends s to the process group that p leads.
func signalGroup(p *os.Process, s childSignal) error {
	sig, ok := map[childSignal]syscall.Signal{
		sigTerm: syscall.SIGTERM, sigKill: syscall.SIGKILL, sigStop: syscall.SIGSTOP, sigCont: syscall.SIGCONT,
	}[s]
	if !ok {
		return fmt.Errorf("unknown signal %d", s)
	}
	if err := syscall.Kill(-p.Pid, sig); err != nil {
		return fmt.Errorf("%v to process group %d: %w", sig, p.Pid, err)
	}
	return nil
}
