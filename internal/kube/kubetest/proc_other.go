//go:build !linux

package kubetest

import "os/exec"

// setProcAttr leaves the process as it is: the control plane binaries are
// built for Linux, where proc_linux.go applies.
func setProcAttr(*exec.Cmd) {}

// killGroup kills the process.
func killGroup(c *exec.Cmd) { _ = c.Process.Kill() }
