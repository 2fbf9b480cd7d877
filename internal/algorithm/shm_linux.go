//go:build linux

package algorithm

import (
	"os"
	"path/filepath"
	"syscall"
)

// shmDir holds system shared memory: shm_open("/name") is /dev/shm/name.
const shmDir = "/dev/shm"

// shmCreate makes a file of size bytes under /dev/shm, its space
// reserved, readable by a runtime running as another user, and maps it;
// remove deletes the file (the mapping stays).
func shmCreate(size int) (name string, mem []byte, remove func(), err error) {
	f, err := os.CreateTemp(shmDir, "tianshu-tensor-*")
	if err != nil {
		return "", nil, nil, err
	}
	defer f.Close()
	remove = func() { _ = os.Remove(f.Name()) }
	if err = f.Chmod(0o644); err == nil {
		// Reserved, not only sized: writing to a page a full tmpfs cannot
		// back would kill the process with SIGBUS (Docker's /dev/shm is
		// 64 MiB); a region that does not fit is refused here instead.
		err = syscall.Fallocate(int(f.Fd()), 0, 0, int64(size))
	}
	if err == nil {
		mem, err = syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	}
	if err != nil {
		remove()
		return "", nil, nil, err
	}
	return filepath.Base(f.Name()), mem, remove, nil
}

func shmUnmap(mem []byte) { _ = syscall.Munmap(mem) }
