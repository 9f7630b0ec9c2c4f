package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when the adapter dies: the suite kills the client when a
// scenario times out, and the engine must not outlive it.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
