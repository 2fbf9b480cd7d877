//go:build !linux

package algorithm

import "errors"

// shmCreate: system shared memory is used on Linux only; elsewhere
// tensors go in the request's body.
func shmCreate(int) (string, []byte, func(), error) {
	return "", nil, nil, errors.New("no system shared memory on this platform")
}

func shmUnmap([]byte) {}
