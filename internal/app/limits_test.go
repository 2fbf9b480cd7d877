package app_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// The HTTP server holds at most api.max-connections connections: one
// beyond the cap waits until another closes (issue #26, part 6).
func TestConnectionCap(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Args: []string{"--api.max-connections", "2"}})
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", e.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// healthz answers on a connection within d, or reports that it did not.
	healthz := func(c net.Conn, d time.Duration) error {
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(d))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	}
	a, b := dial(), dial()
	for _, c := range []net.Conn{a, b} {
		if err := healthz(c, 5*time.Second); err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
	}
	third := dial() // the kernel accepts it; the server does not yet
	if err := healthz(third, 300*time.Millisecond); err == nil {
		t.Fatal("a third connection was served with max-connections 2")
	}
	_ = a.Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("third connection after one closed: %v", err)
	}
	res.Body.Close()
}
