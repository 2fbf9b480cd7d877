package data

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing w's dirty pages to disk
// without waiting for them (sync_file_range with SYNC_FILE_RANGE_WRITE),
// when w is a file. Called as a large upload arrives, it lets the disk work
// beside the network, so the fsync that makes the finished upload durable
// has little left to wait for.
func startWriteback(w io.Writer) {
	c, ok := w.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	})
}
