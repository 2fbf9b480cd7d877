package execpolicy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrOutsideMedia is returned for a media path that is not a file or
// folder under a media root. Its message is the same whether the path
// exists or not, so that it tells nothing about the server's files.
var ErrOutsideMedia = errors.New("no such file or folder under the media roots (--media.root)")

// Media is the set of directories replay devices may read under. Its zero
// value (and a nil *Media) allows nothing.
type Media struct {
	roots   []string // real absolute paths
	written []string // as configured, cleaned, for the check of a path as written
}

// NewMedia resolves the roots; a root that does not exist yet is kept as
// written (the demo and operators may fill it later).
func NewMedia(c MediaConfig) (*Media, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Media{}
	for _, r := range c.Root {
		r = filepath.Clean(r)
		m.written = append(m.written, r)
		if real, err := filepath.EvalSymlinks(r); err == nil {
			r = real
		} else if parent, err := filepath.EvalSymlinks(filepath.Dir(r)); err == nil {
			r = filepath.Join(parent, filepath.Base(r)) // made later, under a linked parent
		}
		m.roots = append(m.roots, r)
	}
	return m, nil
}

// Resolve returns the real path of name when it exists and lies under a
// root both as written and after symbolic links are resolved; otherwise
// ErrOutsideMedia, with the same message for every such path.
func (m *Media) Resolve(name string) (string, error) {
	refuse := fmt.Errorf("%q: %w", name, ErrOutsideMedia)
	if m == nil || !filepath.IsAbs(name) {
		return "", refuse
	}
	clean := filepath.Clean(name)
	if !within(clean, m.roots) && !within(clean, m.written) {
		return "", refuse
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil || !within(real, m.roots) {
		return "", refuse
	}
	return real, nil
}

// Check refuses what Resolve would refuse, except that a path under a root
// as written that does not exist (yet) passes: a device may be saved
// before its folder is filled.
func (m *Media) Check(name string) error {
	refuse := fmt.Errorf("%q: %w", name, ErrOutsideMedia)
	if m == nil || !filepath.IsAbs(name) {
		return refuse
	}
	clean := filepath.Clean(name)
	if !within(clean, m.roots) && !within(clean, m.written) {
		return refuse
	}
	if _, err := m.Resolve(clean); err != nil && !m.missing(clean) {
		return refuse
	}
	return nil
}

// missing reports whether name, or the part of it below its root that
// symbolic links could redirect, does not exist: only then may Check pass a
// path Resolve refuses.
func (m *Media) missing(name string) bool {
	_, err := os.Lstat(name)
	if err == nil {
		return false
	}
	// A missing path whose existing parent resolves out of the roots (a
	// link to /etc, then /etc/x) must still be refused.
	parent := filepath.Dir(name)
	for {
		real, err := filepath.EvalSymlinks(parent)
		if err == nil {
			return within(real, m.roots)
		}
		next := filepath.Dir(parent)
		if next == parent {
			return false
		}
		parent = next
	}
}
