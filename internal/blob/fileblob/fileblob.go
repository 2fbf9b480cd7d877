// Package fileblob is the blob backend on a local directory, the embedded
// default (file:///var/lib/tianshu/objects, or file:// for
// <DataDir>/objects). Importing it registers the "file" scheme.
//
// Key "a/b/c" is stored as <dir>/a.d/b.d/c.o: suffixes keep object files and
// directories apart, so "a" and "a/b" can both exist, and temporary files
// (".tmp-*.tmp") can never be mistaken for either. Each object file carries
// its own metadata (see format.go). Presigned URLs point at the platform
// (Options.PublicURL + "/objects/…"), which serves them with Handler.
package fileblob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

func init() { blob.Register("file", open) }

const (
	objSuffix = ".o"
	dirSuffix = ".d"
	copyBuf   = 256 << 10
)

// errNotDir shows up when a path component is a file, which only a store
// damaged from outside can contain; it means "no such object" all the same.
var errNotDir error = syscall.ENOTDIR

// Store is a blob.Store on a local directory. Create it with New or, with
// the package imported, blob.Open("file:///dir").
type Store struct {
	root       string
	publicURL  string
	signingKey []byte
	now        func() time.Time
	log        *slog.Logger
}

var _ blob.Store = (*Store)(nil)

func open(_ context.Context, u *url.URL, o blob.Options) (blob.Store, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") {
		return nil, fmt.Errorf("fileblob: want file:///absolute/dir or file:// (for <DataDir>/objects)")
	}
	if len(u.Query()) > 0 {
		return nil, fmt.Errorf("fileblob: file URLs take no query parameters")
	}
	dir := u.Path
	if dir == "" {
		if o.DataDir == "" {
			return nil, fmt.Errorf("fileblob: file:// needs Options.DataDir")
		}
		dir = filepath.Join(o.DataDir, "objects")
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("fileblob: directory %q is not absolute", dir)
	}
	return New(dir, o)
}

// New opens (creating it if needed) the store rooted at dir. Of o it uses
// PublicURL, SigningKey, Logger and Now.
func New(dir string, o blob.Options) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("fileblob: create root: %w", err)
	}
	s := &Store{
		root:       root,
		publicURL:  strings.TrimRight(o.PublicURL, "/"),
		signingKey: o.SigningKey,
		now:        o.Now,
		log:        o.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if len(s.signingKey) == 0 {
		// A random key keeps URLs unforgeable; they just stop working at restart.
		s.signingKey = make([]byte, 32)
		_, _ = rand.Read(s.signingKey)
		s.log.Warn("blob signing key not configured; presigned URLs will not survive a restart", "dir", root)
	}
	return s, nil
}

// Dir returns the store's root directory.
func (s *Store) Dir() string { return s.root }

// path maps a valid key to its object file. Validation has already ruled
// out "", "." and ".." segments, so the result always lies under root.
func (s *Store) path(key string) string {
	segs := strings.Split(key, "/")
	for i := range segs {
		if i == len(segs)-1 {
			segs[i] += objSuffix
		} else {
			segs[i] += dirSuffix
		}
	}
	return filepath.Join(append([]string{s.root}, segs...)...)
}

// Put implements blob.Store: it writes a temporary file in the object's
// directory, fsyncs it and renames it into place, so readers see the old
// object or the new one and a crash leaves at worst a stray temporary file.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, o blob.PutOptions) (blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Info{}, err
	}
	if err := blob.ValidateContentType(o.ContentType); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	ct := o.ContentType
	if ct == "" {
		ct = blob.DefaultContentType
	}
	final := s.path(key)
	dir := filepath.Dir(final)
	f, err := createTemp(dir)
	if err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	published := false
	defer func() {
		if !published {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()

	var src io.Reader = blob.ContextReader(ctx, r)
	if o.Size >= 0 {
		src = io.LimitReader(src, o.Size+1) // one more byte reveals an over-long reader
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), src, make([]byte, copyBuf))
	if err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	if o.Size >= 0 && n != o.Size {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: content is %s bytes, PutOptions.Size says %d", key, sizeDesc(n, o.Size), o.Size)
	}
	m := meta{ContentType: ct, ETag: hex.EncodeToString(h.Sum(nil))}
	if err := appendTrailer(f, m); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	// Last chance to honour cancellation: after the rename the Put has happened.
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	published = true
	// Make the rename itself durable; the object is already visible, so a
	// failure here is only logged.
	if err := syncDir(dir); err != nil {
		s.log.Warn("blob directory sync failed", "dir", dir, "err", err)
	}
	return blob.Info{Key: key, Size: n, ContentType: ct, ModTime: fi.ModTime(), ETag: m.ETag}, nil
}

func sizeDesc(n, want int64) string {
	if n > want {
		return "more than " + fmt.Sprint(want)
	}
	return fmt.Sprint(n)
}

// createTemp creates a temporary file in dir, creating dir first. It retries
// when a concurrent Delete prunes the freshly made, still empty directory.
func createTemp(dir string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		err := os.MkdirAll(dir, 0o750)
		if err == nil {
			var f *os.File
			if f, err = os.CreateTemp(dir, ".tmp-*.tmp"); err == nil {
				return f, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 20 {
			return nil, err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// object is an open object file limited to its content; it is an
// io.ReadSeeker so that Handler can serve ranges with http.ServeContent.
type object struct {
	*io.SectionReader
	f *os.File
}

func (o *object) Close() error { return o.f.Close() }

// openObject opens key's file and reads its metadata.
func (s *Store) openObject(key string) (*object, blob.Info, error) {
	f, err := os.Open(s.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return nil, blob.Info{}, fmt.Errorf("fileblob: %q: %w", key, blob.ErrNotFound)
		}
		return nil, blob.Info{}, fmt.Errorf("fileblob: %q: %w", key, err)
	}
	m, size, fi, err := readMeta(f)
	if err != nil {
		_ = f.Close()
		return nil, blob.Info{}, fmt.Errorf("fileblob: %q: %w", key, err)
	}
	info := blob.Info{Key: key, Size: size, ContentType: m.ContentType, ModTime: fi.ModTime(), ETag: m.ETag}
	return &object{io.NewSectionReader(f, 0, size), f}, info, nil
}

// Get implements blob.Store. The reader is also an io.Seeker.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, blob.Info{}, fmt.Errorf("fileblob: get %q: %w", key, err)
	}
	o, info, err := s.openObject(key)
	if err != nil {
		return nil, blob.Info{}, err
	}
	return o, info, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: stat %q: %w", key, err)
	}
	o, info, err := s.openObject(key)
	if err != nil {
		return blob.Info{}, err
	}
	_ = o.Close()
	return info, nil
}

// Delete implements blob.Store, and prunes directories it leaves empty so
// that deleted trees do not accumulate.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fileblob: delete %q: %w", key, err)
	}
	p := s.path(key)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotDir) {
		return fmt.Errorf("fileblob: delete %q: %w", key, err)
	}
	// os.Remove fails on a non-empty directory, which ends the pruning; a
	// Put racing with it retries (createTemp).
	for dir := filepath.Dir(p); len(dir) > len(s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List implements blob.Store by walking the directories under the prefix,
// sorting each by the keys its entries stand for.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return err
	}
	segs := strings.Split(prefix, "/")
	dir, keyPrefix := s.root, ""
	for _, seg := range segs[:len(segs)-1] {
		dir = filepath.Join(dir, seg+dirSuffix)
		keyPrefix += seg + "/"
	}
	return s.walk(ctx, dir, keyPrefix, segs[len(segs)-1], fn)
}

// fnError carries fn's error out of the recursion untouched.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func (s *Store) walk(ctx context.Context, dir, keyPrefix, partial string, fn func(blob.Info) error) error {
	err := s.walkDir(ctx, dir, keyPrefix, partial, fn)
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}

func (s *Store) walkDir(ctx context.Context, dir, keyPrefix, partial string, fn func(blob.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fileblob: list: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return nil // nothing under this prefix (or pruned meanwhile)
		}
		return fmt.Errorf("fileblob: list: %w", err)
	}
	type entry struct {
		seg   string
		isDir bool
		order string // the key (or key prefix) the entry stands for
	}
	var list []entry
	for _, e := range entries {
		name := e.Name()
		var en entry
		switch {
		case e.IsDir() && strings.HasSuffix(name, dirSuffix):
			en = entry{seg: strings.TrimSuffix(name, dirSuffix), isDir: true}
			en.order = en.seg + "/"
		case e.Type().IsRegular() && strings.HasSuffix(name, objSuffix):
			en = entry{seg: strings.TrimSuffix(name, objSuffix)}
			en.order = en.seg
		default:
			continue // temporary files, strays
		}
		if strings.HasPrefix(en.seg, partial) {
			list = append(list, en)
		}
	}
	// Sorting by seg (leaf) and seg+"/" (directory) gives byte order of
	// full keys: every key under a directory shares the seg+"/" prefix and
	// no sibling name contains "/".
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.order, b.order) })
	for _, en := range list {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fileblob: list: %w", err)
		}
		if en.isDir {
			if err := s.walkDir(ctx, filepath.Join(dir, en.seg+dirSuffix), keyPrefix+en.seg+"/", "", fn); err != nil {
				return err
			}
			continue
		}
		key := keyPrefix + en.seg
		if blob.ValidateKey(key) != nil {
			continue // a file someone else put there; Get could not read it either
		}
		o, info, err := s.openObject(key)
		if errors.Is(err, blob.ErrNotFound) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("fileblob: list: %w", err)
		}
		_ = o.Close()
		if err := fn(info); err != nil {
			return fnError{err}
		}
	}
	return nil
}

// Close implements blob.Store; the file backend holds nothing open.
func (s *Store) Close() error { return nil }

// Adopt moves the file at path in as object key (see blob.Adopt): unless
// etag is given it hashes the content for the ETag; it appends the trailer,
// fsyncs and renames, so a large finished upload is never copied. A file on
// another file system is refused with blob.ErrCannotAdopt before anything
// is changed.
func (s *Store) Adopt(ctx context.Context, key, path, contentType, etag string) (blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Info{}, err
	}
	if err := blob.ValidateContentType(contentType); err != nil {
		return blob.Info{}, err
	}
	if contentType == "" {
		contentType = blob.DefaultContentType
	}
	if len(etag) > 128 || strings.ContainsFunc(etag, func(r rune) bool { return r <= ' ' || r == '"' || r >= 0x7f }) {
		return blob.Info{}, fmt.Errorf("fileblob: adopt %q: ETag %q: want up to 128 visible ASCII characters without quotes", key, etag)
	}
	final := s.path(key)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: adopt %q: %w", key, err)
	}
	if !sameDevice(path, dir) {
		return blob.Info{}, blob.ErrCannotAdopt
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: adopt %q: %w", key, err)
	}
	defer f.Close()
	n, err := adoptedSize(ctx, f, &etag)
	if err != nil {
		return blob.Info{}, fmt.Errorf("fileblob: adopt %q: %w", key, err)
	}
	m := meta{ContentType: contentType, ETag: etag}
	if _, err := f.Seek(n, io.SeekStart); err != nil {
		return blob.Info{}, err
	}
	if err := appendTrailer(f, m); err != nil {
		_ = f.Truncate(n)
		return blob.Info{}, fmt.Errorf("fileblob: adopt %q: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Truncate(n)
		return blob.Info{}, fmt.Errorf("fileblob: adopt %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return blob.Info{}, err
	}
	if err := os.Rename(path, final); err != nil {
		_ = f.Truncate(n)
		return blob.Info{}, fmt.Errorf("fileblob: adopt %q: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		s.log.Warn("blob directory sync failed", "dir", dir, "err", err)
	}
	return blob.Info{Key: key, Size: n, ContentType: contentType, ModTime: fi.ModTime(), ETag: m.ETag}, nil
}

// adoptedSize returns the size of the file to adopt and, when *etag is
// empty, hashes the file into it.
func adoptedSize(ctx context.Context, f *os.File, etag *string) (int64, error) {
	if *etag != "" {
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, blob.ContextReader(ctx, f), make([]byte, copyBuf))
	if err != nil {
		return 0, err
	}
	*etag = hex.EncodeToString(h.Sum(nil))
	return n, nil
}

// sameDevice reports whether two paths are on one file system, where a
// rename moves a file without copying it.
func sameDevice(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return false
	}
	da, ok1 := sa.Sys().(*syscall.Stat_t)
	db, ok2 := sb.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && da.Dev == db.Dev
}
