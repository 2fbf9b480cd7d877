//go:build !linux

package app

import (
	"errors"
	"net"
)

// refuseNewConnections has no socket filter to attach here: the drain then
// also accepts and answers connections that arrive during it.
func refuseNewConnections(*net.TCPListener) error {
	return errors.ErrUnsupported
}
