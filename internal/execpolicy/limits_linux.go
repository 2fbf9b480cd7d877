package execpolicy

import "golang.org/x/sys/unix"

// setLimits applies l to the running process pid with prlimit(2). The child
// runs unbounded for the moment between its start and this call: long
// enough to exec, too short to matter for the limits set here.
func setLimits(pid int, l Limits) error {
	for _, r := range []struct {
		res int
		v   uint64
	}{
		{unix.RLIMIT_CPU, l.CPUSeconds},
		{unix.RLIMIT_AS, l.AddressSpace},
		{unix.RLIMIT_NOFILE, l.OpenFiles},
		{unix.RLIMIT_NPROC, l.Processes},
	} {
		if r.v == 0 {
			continue
		}
		var old unix.Rlimit
		if err := unix.Prlimit(pid, r.res, nil, &old); err != nil {
			return err
		}
		// Never raise a limit the server itself runs under.
		lim := unix.Rlimit{Cur: min(r.v, old.Max), Max: min(r.v, old.Max)}
		if err := unix.Prlimit(pid, r.res, &lim, nil); err != nil {
			return err
		}
	}
	return nil
}
