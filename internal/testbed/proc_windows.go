package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// newProcessGroup does nothing on Windows: there is no signal to send to a group, so Stop ends only
// the direct child. The peers that start their own children (node, wrangler) run on the Linux side
// through the spawner (see spawner.go), which does stop whole groups.
func newProcessGroup(*exec.Cmd) {}

// signalGroup ends p for sigTerm and sigKill alike (TerminateProcess: Windows has no SIGTERM), and
// refuses to pause or resume it, which Windows offers no signal for.
func signalGroup(p *os.Process, s childSignal) error {
	switch s {
	case sigTerm, sigKill:
		if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("terminate process %d: %w", p.Pid, err)
		}
		return nil
	default:
		return fmt.Errorf("signal %d to process %d: %w", s, p.Pid, errors.ErrUnsupported)
	}
}
