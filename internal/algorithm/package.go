package algorithm

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
)

// ManifestNames are the file names a package's manifest may have, in the
// order they are looked for at the package root.
var ManifestNames = []string{"manifest.json", "manifest.yaml", "manifest.yml"}

// Manifest describes how to run an install package.
type Manifest struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	// Command is the program to run: a path inside the package ("./bin/srv"
	// or "bin/srv"), or a bare name ("python3") found at the package's root
	// or else in a directory the operator allowed (--exec.allow). Absolute
	// paths and paths out of the package (by "..", or by symbolic links)
	// are refused. Args may use $PORT (or the PortEnv name) and
	// $PACKAGE_DIR; the process runs in the package's directory.
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// PortEnv is the environment variable receiving the assigned port
	// (default PORT). The process must listen on 127.0.0.1 at that port.
	PortEnv string `json:"portEnv,omitempty"`
	// Health is the readiness path (default: the protocol's, /v1/health
	// for tianshu-v1).
	Health string            `json:"health,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
	// Models are files of the package the algorithm needs; each must exist.
	Models    []string  `json:"models,omitempty"`
	Resources Resources `json:"resources"`
	// StartupTimeout bounds the time to become healthy (default
	// Options.StartupTimeout).
	StartupTimeout Duration `json:"startupTimeout,omitempty"`
}

// ErrNoManifest is returned when the package has none of ManifestNames at its root.
var ErrNoManifest = errors.New("package has no manifest.json or manifest.yaml at its root")

// ReadManifest reads and checks the manifest of an unpacked package: the
// command must exist (and be executable) inside the package and every
// model file must be there. Errors name the offending manifest field.
func ReadManifest(dir string) (*Manifest, error) { return readManifest(dir, nil, false) }

// ReadImageManifest is ReadManifest for a package built into an OCI image:
// a bare command that is not in the package ("node", "python3") is left to
// the image's PATH, as the base image provides it.
func ReadImageManifest(dir string) (*Manifest, error) { return readManifest(dir, nil, true) }

// readManifest is ReadManifest that also finds a bare command in the exec
// policy's allowed directories, or with bareFromPath accepts any bare name.
func readManifest(dir string, pol *execpolicy.Policy, bareFromPath bool) (*Manifest, error) {
	var raw []byte
	var name string
	for _, n := range ManifestNames {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err == nil {
			raw, name = b, n
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if raw == nil {
		return nil, ErrNoManifest
	}
	if strings.HasSuffix(name, ".json") {
		raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	} else {
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: "manifest." + field, Msg: fmt.Sprintf(format, args...)}
	}
	if m.Command == "" {
		return nil, bad("command", "required")
	}
	// With bareFromPath, a bare name not in the package is left to the
	// image's PATH.
	if !bareFromPath || m.InPackage(dir) {
		if _, err := m.resolveCommand(dir, pol); err != nil {
			return nil, bad("command", "%v", err)
		}
	}
	if m.PortEnv == "" {
		m.PortEnv = "PORT"
	}
	if !envName(m.PortEnv) {
		return nil, bad("portEnv", "invalid variable name %q", m.PortEnv)
	}
	for k := range m.Env {
		if !envName(k) {
			return nil, bad("env", "invalid variable name %q", k)
		}
	}
	if m.Health != "" && !strings.HasPrefix(m.Health, "/") {
		return nil, bad("health", "must start with '/'")
	}
	for i, f := range m.Models {
		if !filepath.IsLocal(filepath.FromSlash(f)) {
			return nil, bad(fmt.Sprintf("models[%d]", i), "%q is not a path inside the package", f)
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			return nil, bad(fmt.Sprintf("models[%d]", i), "model file %q is missing from the package", f)
		}
	}
	if m.StartupTimeout < 0 {
		return nil, bad("startupTimeout", "must not be negative")
	}
	return &m, nil
}

func envName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// InPackage reports whether the command names a file of the package
// (a path, or a bare name present at the package's root) rather than a
// program found elsewhere.
func (m *Manifest) InPackage(dir string) bool {
	c := m.Command
	if strings.ContainsAny(c, `/\`) {
		return true
	}
	_, err := os.Lstat(filepath.Join(dir, c))
	return err == nil
}

// resolveCommand returns the real path of the command: inside the
// package, or for a bare name not at the package's root, in a directory
// the exec policy allows. The server's PATH is never searched.
func (m *Manifest) resolveCommand(dir string, pol *execpolicy.Policy) (string, error) {
	c := m.Command
	if filepath.IsAbs(c) || strings.HasPrefix(c, `\`) {
		return "", fmt.Errorf("%q is absolute: the command must be a path inside the package (or a bare name the operator allowed)", c)
	}
	if strings.ContainsAny(c, `/\`) {
		return execpolicy.ResolveIn(dir, c)
	}
	if _, err := os.Lstat(filepath.Join(dir, c)); err == nil {
		return execpolicy.ResolveIn(dir, c)
	}
	p, err := pol.Resolve(c)
	if err != nil {
		return "", fmt.Errorf("command %q is not in the package: %w", c, err)
	}
	return p, nil
}

// DefaultMaxUnpackedBytes is the default bound of a package's unpacked
// size: room for large models, while a small archive that expands to fill
// the node's disk is refused.
const DefaultMaxUnpackedBytes = 2 << 30

// PackageLimits bound what unpacking a package may write.
type PackageLimits struct {
	MaxBytes int64 // total uncompressed bytes (default DefaultMaxUnpackedBytes)
	MaxFiles int   // entries (default 20000)
}

func (l PackageLimits) withDefaults() PackageLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxUnpackedBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 20000
	}
	return l
}

// UnpackFile unpacks a .tar.gz (or .tgz, or plain .tar) or .zip package,
// recognised by its content, into dst, which must be empty or absent.
func UnpackFile(src, dst string, limits PackageLimits) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return unpack(f, st.Size(), dst, limits)
}

// Unpack unpacks a package read from r (a zip is spooled to a temporary
// file first, as zip needs random access).
func Unpack(r io.Reader, dst string, limits PackageLimits) error {
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	if !bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return unpackTar(br, dst, limits.withDefaults())
	}
	tmp, err := os.CreateTemp("", "tianshu-package-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(br, limits.withDefaults().MaxBytes+1))
	if err != nil {
		return err
	}
	return unpack(tmp, n, dst, limits)
}

func unpack(f io.ReaderAt, size int64, dst string, limits PackageLimits) error {
	limits = limits.withDefaults()
	head := make([]byte, 4)
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return unpackZip(f, size, dst, limits)
	}
	return unpackTar(io.NewSectionReader(f, 0, size), dst, limits)
}

// safeTree writes entries under dst through an os.Root, so that no name
// or symlink can place anything outside it, and counts against limits.
type safeTree struct {
	root   *os.Root
	limits PackageLimits
	bytes  int64
	files  int
}

func openTree(dst string, limits PackageLimits) (*safeTree, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dst); err != nil {
		return nil, err
	} else if len(ents) > 0 {
		return nil, fmt.Errorf("unpack: %s is not empty", dst)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return nil, err
	}
	return &safeTree{root: root, limits: limits}, nil
}

// entryName checks an archive name and returns it as a local path.
func (t *safeTree) entryName(name string) (string, error) {
	t.files++
	if t.files > t.limits.MaxFiles {
		return "", fmt.Errorf("unpack: more than %d entries", t.limits.MaxFiles)
	}
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if clean == "." {
		return ".", nil
	}
	local := filepath.FromSlash(clean)
	if strings.Contains(name, `\`) || !filepath.IsLocal(local) {
		return "", fmt.Errorf("unpack: entry %q escapes the package", name)
	}
	return local, nil
}

func (t *safeTree) file(name string, mode fs.FileMode, r io.Reader) error {
	if dir := filepath.Dir(name); dir != "." {
		if err := t.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
	}
	f, err := t.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm()&0o755|0o600)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	left := t.limits.MaxBytes - t.bytes
	n, err := io.Copy(f, io.LimitReader(r, left+1))
	t.bytes += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	if n > left {
		return fmt.Errorf("unpack: package unpacks to more than %d bytes (%s), the limit for unpacked packages", t.limits.MaxBytes, sizeString(t.limits.MaxBytes))
	}
	return nil
}

func (t *safeTree) dir(name string) error {
	if name == "." {
		return nil
	}
	if err := t.root.MkdirAll(name, 0o755); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	return nil
}

// symlink creates a relative link whose target stays inside the package.
func (t *safeTree) symlink(name, target string) error {
	if filepath.IsAbs(target) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), filepath.FromSlash(target))) {
		return fmt.Errorf("unpack: symlink %q -> %q points outside the package", name, target)
	}
	if dir := filepath.Dir(name); dir != "." {
		if err := t.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
	}
	if err := t.root.Symlink(target, name); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	return nil
}

func unpackTar(r io.Reader, dst string, limits PackageLimits) error {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	t, err := openTree(dst, limits)
	if err != nil {
		return err
	}
	defer t.root.Close()
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if t.files == 0 {
				return errors.New("unpack: not a tar.gz or zip package, or an empty one")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack: not a valid tar.gz or zip package: %w", err)
		}
		name, err := t.entryName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = t.dir(name)
		case tar.TypeReg:
			err = t.file(name, h.FileInfo().Mode(), tr)
		case tar.TypeSymlink:
			err = t.symlink(name, h.Linkname)
		case tar.TypeXGlobalHeader:
		default:
			err = fmt.Errorf("unpack: entry %q has unsupported type %q (hard links, devices and fifos are refused)", h.Name, h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func unpackZip(f io.ReaderAt, size int64, dst string, limits PackageLimits) error {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return fmt.Errorf("unpack: not a valid zip: %w", err)
	}
	t, err := openTree(dst, limits)
	if err != nil {
		return err
	}
	defer t.root.Close()
	for _, zf := range zr.File {
		name, err := t.entryName(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			err = t.dir(name)
		case mode&fs.ModeSymlink != 0:
			rc, oerr := zf.Open()
			if oerr != nil {
				return fmt.Errorf("unpack: %w", oerr)
			}
			target, rerr := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if rerr != nil {
				return fmt.Errorf("unpack: %w", rerr)
			}
			err = t.symlink(name, string(target))
		case mode.IsRegular():
			rc, oerr := zf.Open()
			if oerr != nil {
				return fmt.Errorf("unpack: %w", oerr)
			}
			err = t.file(name, mode, rc)
			rc.Close()
		default:
			err = fmt.Errorf("unpack: entry %q has unsupported mode %v", zf.Name, mode)
		}
		if err != nil {
			return err
		}
	}
	if t.files == 0 {
		return errors.New("unpack: empty package")
	}
	return nil
}

// sizeString writes n bytes in the largest binary unit that divides it
// (1 MiB, 2 GiB), or in bytes.
func sizeString(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
