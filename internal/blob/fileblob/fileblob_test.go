package fileblob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/blob/blobtest"
	"github.com/tianshu-ai/tianshu/internal/blob/fileblob"
)

// serve starts an HTTP server for the store's presigned URLs the way the
// platform mounts it, and opens the store with that server as PublicURL.
func serve(t *testing.T, dir string, now func() time.Time) (blob.Store, *httptest.Server) {
	t.Helper()
	var h atomic.Pointer[http.Handler]
	mux := http.NewServeMux()
	mux.Handle(fileblob.MountPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*h.Load()).ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s, err := blob.Open(t.Context(), "file://"+dir, blob.Options{
		PublicURL:  srv.URL,
		SigningKey: []byte("test signing key"),
		Now:        now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	handler, ok := blob.Handler(s)
	if !ok {
		t.Fatal("blob.Handler: file store has no handler")
	}
	h.Store(&handler)
	return s, srv
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, _ := serve(t, t.TempDir(), nil)
		return s
	})
}

func TestOpenURLs(t *testing.T) {
	data := t.TempDir()
	s, err := blob.Open(t.Context(), "file://", blob.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Put(t.Context(), "k", strings.NewReader("v"), blob.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "objects", "k.o")); err != nil {
		t.Fatalf("file:// did not default to <DataDir>/objects: %v", err)
	}
	for _, bad := range []string{"file://", "file:relative/dir", "file://host/dir", "file:///abs?x=1"} {
		if s, err := blob.Open(t.Context(), bad, blob.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

// Unlike some S3 gateways, the file store lets a key and keys below it coexist.
func TestKeyAndDirectoryCoexist(t *testing.T) {
	s, _ := serve(t, t.TempDir(), nil)
	ctx := t.Context()
	for _, k := range []string{"a", "a/b", "a/b/c", "a.d", "a/b.o"} {
		if _, err := s.Put(ctx, k, strings.NewReader(k), blob.PutOptions{Size: int64(len(k))}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := s.List(ctx, "a", func(i blob.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a.d", "a/b", "a/b.o", "a/b/c"}; !slices.Equal(keys, want) {
		t.Fatalf("List = %q, want %q", keys, want)
	}
	for _, k := range keys {
		rc, _, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != k {
			t.Fatalf("Get(%q) = %q", k, b)
		}
	}
}

func TestDeletePrunesEmptyDirectories(t *testing.T) {
	dir := t.TempDir()
	s, _ := serve(t, dir, nil)
	ctx := t.Context()
	if _, err := s.Put(ctx, "x/y/z", strings.NewReader("z"), blob.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "x/y/z"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("root still holds %d entries after deleting the only object", len(entries))
	}
}

// Deletes that prune directories race with Puts that need them.
func TestDeletePutRace(t *testing.T) {
	s, _ := serve(t, t.TempDir(), nil)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			key := "d/e/f" + string(rune('0'+i))
			for range 200 {
				if _, err := s.Put(ctx, key, strings.NewReader("v"), blob.PutOptions{Size: 1}); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestListSkipsStrayFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := serve(t, dir, nil)
	if _, err := s.Put(t.Context(), "p/q", strings.NewReader("q"), blob.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash, and files someone else dropped in.
	for _, name := range []string{"p.d/.tmp-123.tmp", "p.d/README", "stray.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := s.List(t.Context(), "", func(i blob.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"p/q"}) {
		t.Fatalf("List = %q", keys)
	}
}

func TestCorruptObject(t *testing.T) {
	dir := t.TempDir()
	s, _ := serve(t, dir, nil)
	if err := os.WriteFile(filepath.Join(dir, "bad.o"), []byte("not an object"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Stat(t.Context(), "bad")
	if err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat of a corrupt file = %v, want a corruption error", err)
	}
}

func TestGetIsSeekable(t *testing.T) {
	s, _ := serve(t, t.TempDir(), nil)
	if _, err := s.Put(t.Context(), "seek", strings.NewReader("0123456789"), blob.PutOptions{Size: 10}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(t.Context(), "seek")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rs, ok := rc.(io.ReadSeeker)
	if !ok {
		t.Fatalf("Get returned %T, not an io.ReadSeeker", rc)
	}
	end, err := rs.Seek(-3, io.SeekEnd)
	if err != nil || end != 7 {
		t.Fatalf("Seek = %d, %v", end, err)
	}
	b, _ := io.ReadAll(rs)
	if string(b) != "789" { // the trailer must stay invisible
		t.Fatalf("read after seek = %q", b)
	}
}

type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(c.now.Load(), 0) }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d / time.Second)) }

func TestHandler(t *testing.T) {
	c := &clock{}
	c.now.Store(1_700_000_000)
	s, srv := serve(t, t.TempDir(), c.Now)
	ctx := t.Context()
	if _, err := s.Put(ctx, "h/page.html", strings.NewReader("<script>alert(1)</script>"), blob.PutOptions{ContentType: "text/html", Size: -1}); err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(ctx, "h/page.html", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.URL + "/objects/h/page.html?expires=1700000060&sig="; !strings.HasPrefix(u, want) {
		t.Fatalf("URL = %s, want prefix %s", u, want)
	}
	do := func(method, u string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, u, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do(http.MethodGet, u)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != "sandbox" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cache-Control") != "private, max-age=60" {
		t.Fatalf("GET = %d %v", resp.StatusCode, resp.Header)
	}
	if resp := do(http.MethodHead, u); resp.StatusCode != 200 || resp.ContentLength != 25 {
		t.Fatalf("HEAD = %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	if resp := do(http.MethodPut, u); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}
	// Traversal attempts never reach the file system.
	for _, p := range []string{"/objects/../x.o", "/objects/%2e%2e/x", "/objects/a/..%2F..%2Fetc"} {
		if resp := do(http.MethodGet, srv.URL+p+"?expires=9999999999&sig=00"); resp.StatusCode < 400 {
			t.Fatalf("GET %s = %d", p, resp.StatusCode)
		}
	}
	c.Advance(60 * time.Second) // the last valid second
	if resp := do(http.MethodGet, u); resp.StatusCode != 200 {
		t.Fatalf("GET at expiry = %d, want 200", resp.StatusCode)
	}
	c.Advance(time.Second)
	if resp := do(http.MethodGet, u); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET after expiry = %d, want 403", resp.StatusCode)
	}
}

// A store opened with another signing key must refuse the first one's URLs.
func TestSigningKeyMatters(t *testing.T) {
	dir := t.TempDir()
	s1, _ := serve(t, dir, nil)
	if _, err := s1.Put(t.Context(), "k", bytes.NewReader([]byte("v")), blob.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	u, err := s1.PresignGet(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := fileblob.New(dir, blob.Options{PublicURL: "http://unused", SigningKey: []byte("other key")})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s2.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("GET with another store's URL = %d, want 403", rec.Code)
	}
}

func TestAdoptMovesTheFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := blob.Open(ctx, "file://"+filepath.Join(dir, "objects"), blob.Options{DataDir: dir, PublicURL: "http://127.0.0.1:1", SigningKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := filepath.Join(dir, "staged.bin")
	content := bytes.Repeat([]byte("tianshu "), 100000)
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := blob.Adopt(ctx, s, "uploads/p/u1/file.bin", src, "application/octet-stream", "")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if info.Size != int64(len(content)) || info.ETag != hex.EncodeToString(sum[:]) {
		t.Fatalf("info %+v", info)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatalf("staged file still there: %v", err)
	}
	rc, got, err := s.Get(ctx, "uploads/p/u1/file.bin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, content) || got.ETag != info.ETag {
		t.Fatalf("adopted object: %d bytes, etag %s", len(b), got.ETag)
	}
	if _, err := blob.Adopt(ctx, s, "../escape", src, "", ""); err == nil {
		t.Fatal("invalid key adopted")
	}

	// A caller-named ETag is kept, and the file is not read for a hash.
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.Adopt(ctx, s, "uploads/p/u2/file.bin", src, "", `bad"etag`); err == nil {
		t.Fatal("an ETag with a quote was accepted")
	}
	info, err = blob.Adopt(ctx, s, "uploads/p/u2/file.bin", src, "", "upl-u2")
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err = s.Get(ctx, "uploads/p/u2/file.bin"); err != nil || got.ETag != "upl-u2" || got.Size != int64(len(content)) || info.ETag != "upl-u2" {
		t.Fatalf("adopted with an ETag: %+v %+v %v", info, got, err)
	}
}
