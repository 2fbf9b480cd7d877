//go:build !unix

package algorithm

import "os"

// signalGroup kills the process itself; without process groups its
// children may survive.
func signalGroup(pid int, _ bool) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// groupOf is pid itself where there are no process groups.
func groupOf(pid int) int { return pid }
