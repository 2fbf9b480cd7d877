package app

import (
	"net"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// synFilter drops TCP segments that open a connection (SYN without ACK)
// and lets every other one through: attached to a listening socket, the
// kernel completes no new handshake on it while the ones under way, and
// the connections already waiting in its accept queue, go on. At a
// socket filter the data starts at the TCP header; byte 13 is its flags.
var synFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: 13, Size: 1},
	bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12}, // SYN | ACK
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x02, SkipFalse: 1},
	bpf.RetConstant{Val: 0},          // a SYN: dropped, its client's kernel retries
	bpf.RetConstant{Val: 0xffffffff}, // anything else: kept whole
})

func mustAssemble(prog []bpf.Instruction) []unix.SockFilter {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}

// refuseNewConnections makes ln complete no new connection. A client
// whose SYN is dropped retries it (after about a second), and is refused
// once the socket has closed. An error says the kernel took no filter
// (some sandboxes refuse socket filters): the drain then still answers
// what it accepts, it only accepts what arrives during it as well.
func refuseNewConnections(ln *net.TCPListener) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(synFilter)), Filter: &synFilter[0]}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	}); err != nil {
		return err
	}
	return serr
}
