package execpolicy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotAllowed is returned for a program outside the allowed directories:
// the caller must not run it, and should tell the user to ask an operator
// for an --exec.allow entry.
var ErrNotAllowed = errors.New("not under a directory the operator allowed (--exec.allow)")

// ErrNotFound is returned for a program named inside the allowed
// directories that is not there (only there is telling so harmless).
var ErrNotFound = errors.New("not found in the directories the operator allowed (--exec.allow)")

// Policy is a validated Config: the allowed programs as real paths, the
// children's user and limits. Its zero value (and a nil *Policy) allows no
// user-named program and runs children as the server's user with no limits;
// New applies the configured ones.
type Policy struct {
	allow   []string // real absolute paths, directories or files
	written []string // as configured, cleaned, for the check of a path as written
	cred    *syscall.Credential
	workDir string
	limits  Limits
}

// New checks c and resolves its paths. It fails when an allowed path or the
// user does not exist.
func New(c Config) (*Policy, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{workDir: c.WorkDir, limits: c.Limits}
	for _, a := range c.Allow {
		p.written = append(p.written, filepath.Clean(a))
		real, err := filepath.EvalSymlinks(a)
		if err != nil {
			return nil, fmt.Errorf("exec.allow: %w", err)
		}
		p.allow = append(p.allow, real)
	}
	if c.User != "" && os.Geteuid() == 0 {
		u, err := user.Lookup(c.User)
		if err != nil {
			return nil, fmt.Errorf("exec.user: %w", err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			return nil, fmt.Errorf("exec.user: %q is not an unprivileged user", c.User)
		}
		// An empty Groups drops root's supplementary groups.
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	return p, nil
}

// RunsAsRoot reports whether children would run as root: the server is
// root and no --exec.user is set.
func (p *Policy) RunsAsRoot() bool { return os.Geteuid() == 0 && (p == nil || p.cred == nil) }

// SwitchesUser reports whether children run as --exec.user rather than as
// the server's user: files they need must then be theirs to read (Share).
func (p *Policy) SwitchesUser() bool { return p != nil && p.cred != nil }

// Limits returns the limits set on children.
func (p *Policy) Limits() Limits {
	if p == nil {
		return Limits{}
	}
	return p.limits
}

// within reports whether real is one of roots or below one.
func within(real string, roots []string) bool {
	for _, r := range roots {
		if real == r {
			return true
		}
		if rel, err := filepath.Rel(r, real); err == nil && filepath.IsLocal(rel) {
			return true
		}
	}
	return false
}

// Resolve returns the real path of the program name names, only if it lies
// in an allowed directory (or is an allowed file) both as written and after
// symbolic links are resolved. A bare name is looked for in the allowed
// directories, never on the server's PATH; a relative path with a slash is
// refused. Whether a refused path exists is never told.
func (p *Policy) Resolve(name string) (string, error) {
	refuse := fmt.Errorf("program %q: %w", name, ErrNotAllowed)
	if p == nil || len(p.allow) == 0 || name == "" {
		return "", refuse
	}
	var candidates []string
	switch {
	case filepath.IsAbs(name):
		candidates = []string{filepath.Clean(name)}
	case strings.ContainsAny(name, `/\`):
		return "", refuse
	default:
		for _, a := range slices.Concat(p.allow, p.written) {
			if filepath.Base(a) == name {
				candidates = append(candidates, a)
			} else {
				candidates = append(candidates, filepath.Join(a, name))
			}
		}
	}
	missing := false
	for _, c := range candidates {
		if !within(c, p.allow) && !within(c, p.written) {
			continue
		}
		real, err := filepath.EvalSymlinks(c)
		if errors.Is(err, fs.ErrNotExist) {
			missing = true
			continue
		}
		if err != nil || !within(real, p.allow) {
			continue
		}
		if err := executable(real); err != nil {
			return "", fmt.Errorf("program %q: %w", name, err)
		}
		return real, nil
	}
	if missing {
		return "", fmt.Errorf("program %q: %w", name, ErrNotFound)
	}
	return "", refuse
}

// ResolveIn returns the real path of the program rel inside dir (a
// package's own directory): rel must be relative and stay inside dir after
// symbolic links are resolved.
func ResolveIn(dir, rel string) (string, error) {
	if rel == "" || filepath.IsAbs(rel) || strings.HasPrefix(rel, `\`) {
		return "", fmt.Errorf("%q must be a path inside the package", rel)
	}
	local := filepath.FromSlash(strings.TrimPrefix(rel, "./"))
	if !filepath.IsLocal(local) {
		return "", fmt.Errorf("%q points outside the package", rel)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(realDir, local))
	if err != nil {
		return "", fmt.Errorf("command %q not found in the package", rel)
	}
	if !within(real, []string{realDir}) {
		return "", fmt.Errorf("%q points outside the package", rel)
	}
	if err := executable(real); err != nil {
		return "", fmt.Errorf("command %q: %w", rel, err)
	}
	return real, nil
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// Spec is one child to run.
type Spec struct {
	// Path is the program, as Resolve, ResolveIn or the operator gave it.
	Path string
	Args []string
	// Env is what the version or device declares (KEY=value): with PATH,
	// HOME and TMPDIR of the policy's own, the child's whole environment.
	// Declared entries win.
	Env []string
	// Dir is the working directory; empty runs the child in the
	// directory of its own that the policy makes.
	Dir string
	// NoAddressSpaceLimit exempts a child from RLIMIT_AS (GPU processes).
	NoAddressSpaceLimit bool
	// AddressSpace, when set, is a lower RLIMIT_AS in bytes for this child
	// (an algorithm version's resources.addressSpaceMB); the operator's limit
	// still caps it, and NoAddressSpaceLimit does not lift it.
	AddressSpace uint64
}

// Child is a command built by the policy, not started yet. Callers set its
// Cmd's Stdout, Stderr, Cancel and WaitDelay, start it with Start, and call
// Cleanup once it has been waited for.
type Child struct {
	Cmd *exec.Cmd
	// Home is the child's own directory (HOME and TMPDIR, and the working
	// directory unless Spec.Dir named another).
	Home   string
	limits Limits
}

// basePath is the PATH children get: the usual system directories, not
// the server's.
const basePath = "/usr/local/bin:/usr/bin:/bin"

// Command builds a child from s: a clean environment, a fresh directory of
// its own (owned by the children's user), its own process group, and the
// children's user when the server runs as root. ctx kills the child as
// exec.CommandContext does.
func (p *Policy) Command(ctx context.Context, s Spec) (*Child, error) {
	if p == nil {
		p = &Policy{}
	}
	home, err := os.MkdirTemp(p.workDir, "tianshu-exec-")
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if p.cred != nil {
		if err := os.Chown(home, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			_ = os.RemoveAll(home)
			return nil, fmt.Errorf("exec: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, s.Path, s.Args...)
	env := map[string]string{"PATH": basePath, "HOME": home, "TMPDIR": home}
	order := []string{"PATH", "HOME", "TMPDIR"}
	for _, kv := range s.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, seen := env[k]; !seen {
			order = append(order, k)
		}
		env[k] = v
	}
	cmd.Env = make([]string, 0, len(order))
	for _, k := range order {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Dir = home
	if s.Dir != "" {
		cmd.Dir = s.Dir
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	lim := p.limits
	if s.NoAddressSpaceLimit {
		lim.AddressSpace = 0
	}
	if s.AddressSpace > 0 && (lim.AddressSpace == 0 || s.AddressSpace < lim.AddressSpace) {
		lim.AddressSpace = s.AddressSpace
	}
	return &Child{Cmd: cmd, Home: home, limits: lim}, nil
}

// Start starts the child and sets its resource limits; when they cannot
// be set the child is killed and the error returned.
func (c *Child) Start() error {
	if err := c.Cmd.Start(); err != nil {
		return err
	}
	if err := setLimits(c.Cmd.Process.Pid, c.limits); err != nil {
		_ = syscall.Kill(-c.Cmd.Process.Pid, syscall.SIGKILL)
		_ = c.Cmd.Wait()
		return fmt.Errorf("set resource limits: %w", err)
	}
	return nil
}

// Cleanup removes the child's own directory.
func (c *Child) Cleanup() { _ = os.RemoveAll(c.Home) }

// Share gives the tree at dir to the children's user, so that a child
// running as that user can read (and use) its package; it does nothing
// when children run as the server's user.
func (p *Policy) Share(dir string) error {
	if p == nil || p.cred == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(p.cred.Uid), int(p.cred.Gid))
	})
}
