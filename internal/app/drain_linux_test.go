package app

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// With the SYN filter on, a connection already completed is still
// accepted, and one begun after it is refused once the socket closes:
// never connected and then reset.
func TestRefuseNewConnectionsKeepsTheQueue(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.(*net.TCPListener)
	defer ln.Close()
	queued, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
	if err := refuseNewConnections(ln); err != nil {
		// A kernel or sandbox without socket filters (ENOTSUP, EPERM):
		// there is no real filter to test against here.
		t.Skipf("this kernel takes no socket filter: %v", err)
	}
	late := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		late <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("the queued connection was not accepted: %v", err)
	}
	c.Close()
	ln.Close()
	if err := <-late; !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a connection begun after the filter: %v, want refused", err)
	}
}
