//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing outside Linux, the only OS with a parent-death signal: there an engine
// left behind by a killed adapter runs until stop or the suite's end. The suite runs on Linux.
func dieWithParent(*exec.Cmd) {}
