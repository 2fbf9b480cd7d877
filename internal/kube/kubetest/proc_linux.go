package kubetest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the process in a group of its own and has the kernel
// kill it when the test binary dies, so no etcd outlives a killed test.
func setProcAttr(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process's group.
func killGroup(c *exec.Cmd) { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
