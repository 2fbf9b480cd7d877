// Package blobtest is the conformance suite every blob backend must pass.
// Code that uses a blob.Store may rely on what this suite checks and on
// nothing else.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

// Run runs the suite. open must return a new, empty store each time it is
// called and arrange (with t.Cleanup) to close it; when the backend's
// presigned URLs are served by the platform, open must serve them too.
//
// The suite assumes presigned URLs carry their signature in a query
// parameter named "sig" or ending in "signature", and their expiry in one
// named "expires" or ending in "-expires" (case-insensitive), so it can
// tamper with them.
//
// It does not store a key and a key below it ("a" and "a/b") at once: S3
// allows that but some S3 gateways (and so portable callers) do not.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Empty", testEmpty},
		{"LargeStream", testLargeStream},
		{"SizeMismatch", testSizeMismatch},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"List", testList},
		{"ListStop", testListStop},
		{"InvalidKeys", testInvalidKeys},
		{"UnusualKeys", testUnusualKeys},
		{"Presign", testPresign},
		{"PresignTampered", testPresignTampered},
		{"PresignExpired", testPresignExpired},
		{"FailedPut", testFailedPut},
		{"ConcurrentPut", testConcurrentPut},
		{"Canceled", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// stream hides every interface but io.Reader, so stores cannot learn the
// size or seek: they must stream.
type stream struct{ io.Reader }

func put(t *testing.T, s blob.Store, key string, data []byte, ct string) blob.Info {
	t.Helper()
	info, err := s.Put(t.Context(), key, bytes.NewReader(data), blob.PutOptions{ContentType: ct, Size: int64(len(data))})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.ETag == "" || info.ModTime.IsZero() {
		t.Fatalf("Put(%q) info = %+v, want key, size %d, an ETag and a ModTime", key, info, len(data))
	}
	if want := contentType(ct); info.ContentType != want {
		t.Fatalf("Put(%q) content type = %q, want %q", key, info.ContentType, want)
	}
	return info
}

func get(t *testing.T, s blob.Store, key string) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q) read: %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(b)) {
		t.Fatalf("Get(%q) info = %+v, read %d bytes", key, info, len(b))
	}
	return b, info
}

func contentType(ct string) string {
	if ct == "" {
		return blob.DefaultContentType
	}
	return ct
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func wantGone(t *testing.T, s blob.Store, key string) {
	t.Helper()
	_, err := s.Stat(t.Context(), key)
	wantErr(t, fmt.Sprintf("Stat(%q)", key), err, blob.ErrNotFound)
	rc, _, err := s.Get(t.Context(), key)
	if err == nil {
		rc.Close()
	}
	wantErr(t, fmt.Sprintf("Get(%q)", key), err, blob.ErrNotFound)
}

func wantSameInfo(t *testing.T, what string, got, want blob.Info) {
	t.Helper()
	if got.Key != want.Key || got.Size != want.Size || got.ETag != want.ETag || got.ContentType != want.ContentType {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func testRoundTrip(t *testing.T, s blob.Store) {
	data := randomBytes(1, 100<<10)
	pinfo := put(t, s, "round/trip.bin", data, "image/jpeg")
	got, ginfo := get(t, s, "round/trip.bin")
	if !bytes.Equal(got, data) {
		t.Fatal("Get returned different bytes")
	}
	wantSameInfo(t, "Get info", ginfo, pinfo)
	sinfo, err := s.Stat(t.Context(), "round/trip.bin")
	if err != nil {
		t.Fatal(err)
	}
	wantSameInfo(t, "Stat info", sinfo, pinfo)
	if sinfo.ModTime.IsZero() {
		t.Fatal("Stat ModTime is zero")
	}
}

func testEmpty(t *testing.T, s blob.Store) {
	info := put(t, s, "empty", nil, "")
	if info.ContentType != blob.DefaultContentType {
		t.Fatalf("content type = %q, want the default", info.ContentType)
	}
	got, ginfo := get(t, s, "empty")
	if len(got) != 0 {
		t.Fatalf("Get read %d bytes, want 0", len(got))
	}
	wantSameInfo(t, "Get info", ginfo, info)
	// An empty body of unknown size is still an object.
	if _, err := s.Put(t.Context(), "empty2", stream{strings.NewReader("")}, blob.PutOptions{Size: -1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, s, "empty2"); len(got) != 0 {
		t.Fatalf("Get read %d bytes, want 0", len(got))
	}
}

func testLargeStream(t *testing.T, s blob.Store) {
	const size = 20<<20 + 12345 // not a multiple of any part size
	var seed [32]byte
	seed[0] = 7
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(rand.NewChaCha8(seed), size), h)
	info, err := s.Put(t.Context(), "large/blob", stream{body}, blob.PutOptions{ContentType: "video/mp4", Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size {
		t.Fatalf("Put size = %d, want %d", info.Size, size)
	}
	want := h.Sum(nil)

	rc, ginfo, err := s.Get(t.Context(), "large/blob")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h.Reset()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || ginfo.Size != size || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("Get read %d bytes (info %d), sha256 match %v; want %d bytes", n, ginfo.Size, bytes.Equal(h.Sum(nil), want), size)
	}
	sinfo, err := s.Stat(t.Context(), "large/blob")
	if err != nil {
		t.Fatal(err)
	}
	wantSameInfo(t, "Stat info", sinfo, info)
}

func testSizeMismatch(t *testing.T, s blob.Store) {
	for _, tc := range []struct {
		body string
		size int64
	}{{"short", 10}, {"longer than said", 4}} {
		_, err := s.Put(t.Context(), "mismatch", stream{strings.NewReader(tc.body)}, blob.PutOptions{Size: tc.size})
		if err == nil {
			t.Fatalf("Put of %d bytes with Size %d succeeded", len(tc.body), tc.size)
		}
		wantGone(t, s, "mismatch")
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	first := put(t, s, "over/write", []byte("version one"), "text/plain")
	second := put(t, s, "over/write", []byte("version two, longer"), "application/json")
	if first.ETag == second.ETag {
		t.Fatalf("ETag unchanged by an overwrite with other content: %q", first.ETag)
	}
	got, info := get(t, s, "over/write")
	if string(got) != "version two, longer" {
		t.Fatalf("Get = %q", got)
	}
	wantSameInfo(t, "Get info", info, second)
}

func testDelete(t *testing.T, s blob.Store) {
	put(t, s, "del/a/x", []byte("x"), "")
	put(t, s, "del/b", []byte("b"), "")
	for range 2 { // deleting twice is fine
		if err := s.Delete(t.Context(), "del/a/x"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	wantGone(t, s, "del/a/x")
	if err := s.Delete(t.Context(), "never/was"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if got, _ := get(t, s, "del/b"); string(got) != "b" {
		t.Fatal("Delete touched a neighbour")
	}
	// The key can be written again after deletion.
	put(t, s, "del/a/x", []byte("again"), "")
	if got, _ := get(t, s, "del/a/x"); string(got) != "again" {
		t.Fatalf("Get after re-Put = %q", got)
	}
}

func testNotFound(t *testing.T, s blob.Store) {
	wantGone(t, s, "missing")
	put(t, s, "nf/dir/obj", []byte("x"), "")
	wantGone(t, s, "nf/dir")    // a "directory" is not an object
	wantGone(t, s, "nf/dir/o")  // a prefix of a key is not an object
	wantGone(t, s, "nf/dir/ob") // nor is a key missing its last byte
}

func listKeys(t *testing.T, s blob.Store, prefix string) []blob.Info {
	t.Helper()
	var got []blob.Info
	if err := s.List(t.Context(), prefix, func(i blob.Info) error {
		got = append(got, i)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func testList(t *testing.T, s blob.Store) {
	keys := []string{
		"a/b/c", "a/bc", "a-c", "a/b/d/e", "ab", "b", "z/y", "a/b/d/f/g",
		"日本/語", "a b/c", "a/b!", "A/upper", "a/b/d0",
	}
	infos := map[string]blob.Info{}
	for i, k := range keys {
		infos[k] = put(t, s, k, bytes.Repeat([]byte{'x'}, i), "text/plain")
	}
	sorted := slices.Sorted(slices.Values(keys))
	for _, prefix := range []string{"", "a", "a/", "a/b", "a/b/", "a/b/d", "a/b/d/", "ab", "nope", "nope/", "z/", "日", "a/."} {
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		got := listKeys(t, s, prefix)
		var gotKeys []string
		for _, i := range got {
			gotKeys = append(gotKeys, i.Key)
			w := infos[i.Key]
			if i.Size != w.Size || i.ETag != w.ETag || i.ModTime.IsZero() || (i.ContentType != "" && i.ContentType != w.ContentType) {
				t.Errorf("List(%q) info %+v, Put gave %+v", prefix, i, w)
			}
		}
		if !slices.Equal(gotKeys, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, gotKeys, want)
		}
	}
	// A deleted key disappears from listings.
	if err := s.Delete(t.Context(), "a/b/d/e"); err != nil {
		t.Fatal(err)
	}
	var gotKeys []string
	for _, i := range listKeys(t, s, "a/b/d") {
		gotKeys = append(gotKeys, i.Key)
	}
	if want := []string{"a/b/d/f/g", "a/b/d0"}; !slices.Equal(gotKeys, want) {
		t.Errorf("List after Delete = %q, want %q", gotKeys, want)
	}
}

func testListStop(t *testing.T, s blob.Store) {
	for _, k := range []string{"s/1", "s/2", "s/3", "s/4"} {
		put(t, s, k, []byte(k), "")
	}
	stop := errors.New("stop here")
	var seen []string
	err := s.List(t.Context(), "s/", func(i blob.Info) error {
		seen = append(seen, i.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	wantErr(t, "List with a failing callback", err, stop)
	if !slices.Equal(seen, []string{"s/1", "s/2"}) {
		t.Fatalf("List called back for %q, want the first two keys only", seen)
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	invalid := []string{
		"", "/", "/a", "a/", "a//b", ".", "..", "./a", "a/.", "a/./b", "a/../b", "../a", "..",
		`a\b`, "a\x00b", "a\nb", "a\rb", "a\tb", "\x7f", "a\u0085b", "\xff\xfe",
		strings.Repeat("k", blob.MaxKeyLen+1),
		strings.Repeat("s", blob.MaxSegmentLen+1),
	}
	ctx := t.Context()
	for _, key := range invalid {
		name := strconv.Quote(key)
		if len(name) > 40 {
			name = name[:40]
		}
		_, err := s.Put(ctx, key, strings.NewReader("x"), blob.PutOptions{Size: 1})
		wantErr(t, "Put "+name, err, blob.ErrInvalidKey)
		_, _, err = s.Get(ctx, key)
		wantErr(t, "Get "+name, err, blob.ErrInvalidKey)
		_, err = s.Stat(ctx, key)
		wantErr(t, "Stat "+name, err, blob.ErrInvalidKey)
		err = s.Delete(ctx, key)
		wantErr(t, "Delete "+name, err, blob.ErrInvalidKey)
		_, err = s.PresignGet(ctx, key, time.Minute)
		wantErr(t, "PresignGet "+name, err, blob.ErrInvalidKey)
	}
	for _, prefix := range []string{"/", "/a", "a//", "../", "a/../", `a\`, "\x00", "a\n", strings.Repeat("p", blob.MaxKeyLen+1)} {
		err := s.List(ctx, prefix, func(blob.Info) error { return nil })
		wantErr(t, fmt.Sprintf("List(%q)", prefix), err, blob.ErrInvalidKey)
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Fatalf("store holds %d objects after invalid puts", len(got))
	}
}

func testUnusualKeys(t *testing.T, s blob.Store) {
	// A long key of segments near the limit: 4*249 + 3 = 999 bytes.
	seg := strings.Repeat("L", blob.MaxSegmentLen-1)
	long := strings.Join([]string{seg, seg, seg, seg}, "/")
	keys := []string{
		long, "sp ace/x y", "pct%2F/%41", "plus+amp&eq=semi;", "q?hash#frag", "ünï/cødé/日本",
		".hidden", "..dots/...", "tilde~star*quote'", "a.d/b.o", ".tmp-1.tmp", "x/.tmp-2.tmp",
	}
	for i, key := range keys {
		data := []byte(fmt.Sprintf("content %d", i))
		put(t, s, key, data, "text/plain")
		if got, _ := get(t, s, key); !bytes.Equal(got, data) {
			t.Fatalf("Get(%q) = %q, want %q", key, got, data)
		}
		u, err := s.PresignGet(t.Context(), key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if code, body, _ := fetch(t, u, nil); code != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("presigned GET of %q = %d %q, want 200 %q", key, code, body, data)
		}
	}
	var listed []string
	for _, i := range listKeys(t, s, "") {
		listed = append(listed, i.Key)
	}
	if want := slices.Sorted(slices.Values(keys)); !slices.Equal(listed, want) {
		t.Fatalf("List = %q, want %q", listed, want)
	}
	for _, key := range keys {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		wantGone(t, s, key)
	}
}

func fetch(t *testing.T, u string, hdr http.Header) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	// A plain client, as an application fetching the URL would use.
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("GET presigned URL: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET presigned URL: read: %v", err)
	}
	return resp.StatusCode, b, resp.Header
}

func testPresign(t *testing.T, s blob.Store) {
	data := randomBytes(3, 64<<10)
	put(t, s, "pre/sign.png", data, "image/png")
	u, err := s.PresignGet(t.Context(), "pre/sign.png", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	code, body, hdr := fetch(t, u, nil)
	if code != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d with %d bytes, want 200 with %d", code, len(body), len(data))
	}
	if ct := hdr.Get("Content-Type"); ct != "image/png" {
		t.Errorf("Content-Type = %q, want image/png", ct)
	}
	code, body, _ = fetch(t, u, http.Header{"Range": {"bytes=2-5"}})
	if code != http.StatusPartialContent || !bytes.Equal(body, data[2:6]) {
		t.Errorf("ranged GET = %d %x, want 206 %x", code, body, data[2:6])
	}
	if etag := hdr.Get("ETag"); etag == "" {
		t.Error("no ETag header")
	} else if code, _, _ = fetch(t, u, http.Header{"If-None-Match": {etag}}); code != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", code)
	}

	// A URL for a missing object is signed fine and answers 404.
	u, err = s.PresignGet(t.Context(), "pre/missing", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := fetch(t, u, nil); code != http.StatusNotFound {
		t.Errorf("GET of a missing object = %d, want 404", code)
	}
	for _, ttl := range []time.Duration{0, -time.Second, blob.MaxPresignTTL + time.Second} {
		if _, err := s.PresignGet(t.Context(), "pre/sign.png", ttl); err == nil {
			t.Errorf("PresignGet with ttl %v succeeded", ttl)
		}
	}
}

// tamper returns u with the first query parameter that match() changed by
// change, failing the test when there is none.
func tamper(t *testing.T, u string, match func(lower string) bool, change func(string) string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	for k, v := range q {
		if match(strings.ToLower(k)) {
			q.Set(k, change(v[0]))
			pu.RawQuery = q.Encode()
			return pu.String()
		}
	}
	t.Fatalf("no parameter to tamper with in %s", u)
	return ""
}

func testPresignTampered(t *testing.T, s blob.Store) {
	put(t, s, "tamper/mine", []byte("mine"), "")
	put(t, s, "tamper/them", []byte("theirs"), "")
	u, err := s.PresignGet(t.Context(), "tamper/mine", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := fetch(t, u, nil); code != http.StatusOK || string(body) != "mine" {
		t.Fatalf("untampered GET = %d %q", code, body)
	}
	isSig := func(k string) bool { return k == "sig" || strings.HasSuffix(k, "signature") }
	isExp := func(k string) bool { return k == "expires" || strings.HasSuffix(k, "-expires") }
	flipLast := func(v string) string {
		b := []byte(v)
		if b[len(b)-1] == '0' {
			b[len(b)-1] = '1'
		} else {
			b[len(b)-1] = '0'
		}
		return string(b)
	}
	later := func(v string) string {
		n, _ := strconv.ParseInt(v, 10, 64)
		return strconv.FormatInt(n+3600, 10)
	}
	for name, bad := range map[string]string{
		"signature": tamper(t, u, isSig, flipLast),
		"expiry":    tamper(t, u, isExp, later),
		"key":       strings.Replace(u, "tamper/mine", "tamper/them", 1),
		"no query":  strings.SplitN(u, "?", 2)[0],
	} {
		if code, body, _ := fetch(t, bad, nil); code != http.StatusForbidden {
			t.Errorf("GET with tampered %s = %d %.40q, want 403", name, code, body)
		}
	}
}

func testPresignExpired(t *testing.T, s blob.Store) {
	put(t, s, "expire/me", []byte("soon gone"), "")
	u, err := s.PresignGet(t.Context(), "expire/me", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Poll instead of sleeping a guessed time: the URL must stop working,
	// and on a loaded machine we cannot say exactly when we will look.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := fetch(t, u, nil)
		if code == http.StatusForbidden {
			return
		}
		if code != http.StatusOK {
			t.Fatalf("GET = %d, want 200 then 403", code)
		}
		if time.Now().After(deadline) {
			t.Fatal("presigned URL with a 1s ttl still works after 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func testFailedPut(t *testing.T, s blob.Store) {
	boom := errors.New("blobtest: reader failed")
	// 9 MiB is past the first part of a multipart upload (5-8 MiB).
	for _, n := range []int{0, 1 << 10, 9 << 20} {
		body := io.MultiReader(bytes.NewReader(randomBytes(4, n)), failingReader{boom})
		_, err := s.Put(t.Context(), "fail/new", body, blob.PutOptions{Size: -1})
		wantErr(t, fmt.Sprintf("Put failing after %d bytes", n), err, boom)
		wantGone(t, s, "fail/new")
	}
	old := put(t, s, "fail/old", []byte("the old version"), "text/plain")
	body := io.MultiReader(bytes.NewReader(randomBytes(5, 1<<10)), failingReader{boom})
	_, err := s.Put(t.Context(), "fail/old", body, blob.PutOptions{ContentType: "image/gif", Size: -1})
	wantErr(t, "failing overwrite", err, boom)
	got, info := get(t, s, "fail/old")
	if string(got) != "the old version" {
		t.Fatalf("failed overwrite left %q", got)
	}
	wantSameInfo(t, "info after failed overwrite", info, old)
	if n := len(listKeys(t, s, "")); n != 1 {
		t.Fatalf("List shows %d objects, want 1", n)
	}
}

func testConcurrentPut(t *testing.T, s blob.Store) {
	const writers, size = 6, 512 << 10
	ct := func(b byte) string { return "application/x-writer-" + string(b) }
	check := func(data []byte, info blob.Info) error {
		if len(data) != size || info.Size != size {
			return fmt.Errorf("read %d bytes (info %d), want %d", len(data), info.Size, size)
		}
		if bytes.Count(data, data[:1]) != size {
			return fmt.Errorf("content mixes writers")
		}
		if info.ContentType != ct(data[0]) {
			return fmt.Errorf("content of writer %c with content type %q", data[0], info.ContentType)
		}
		return nil
	}

	var done atomic.Bool
	readerDone := make(chan struct{})
	go func() { // readers must only ever see whole versions
		defer close(readerDone)
		for !done.Load() {
			rc, info, err := s.Get(t.Context(), "race")
			if errors.Is(err, blob.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Errorf("concurrent Get: %v", err)
				return
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err == nil {
				err = check(data, info)
			}
			if err != nil {
				t.Errorf("concurrent Get: %v", err)
				return
			}
		}
	}()

	start := make(chan struct{})
	var wg sync.WaitGroup
	etags := make([]string, writers)
	for i := range writers {
		wg.Go(func() {
			b := byte('a' + i)
			<-start
			info, err := s.Put(t.Context(), "race", stream{bytes.NewReader(bytes.Repeat([]byte{b}, size))}, blob.PutOptions{ContentType: ct(b), Size: -1})
			if err != nil {
				t.Errorf("writer %c: %v", b, err)
			}
			etags[i] = info.ETag
		})
	}
	close(start)
	wg.Wait()
	done.Store(true)
	<-readerDone

	data, info := get(t, s, "race")
	if err := check(data, info); err != nil {
		t.Fatal(err)
	}
	if w := data[0] - 'a'; etags[w] != info.ETag {
		t.Fatalf("final ETag %q is not writer %c's %q", info.ETag, data[0], etags[w])
	}
	sinfo, err := s.Stat(t.Context(), "race")
	if err != nil {
		t.Fatal(err)
	}
	wantSameInfo(t, "Stat", sinfo, info)
}

// cancelingReader yields zeros, cancels its context after `after` bytes,
// and gives up (with errIgnored) if the store keeps reading long after.
type cancelingReader struct {
	after, n int
	cancel   func()
}

var errIgnored = errors.New("blobtest: store kept reading after cancellation")

func (r *cancelingReader) Read(p []byte) (int, error) {
	if r.n >= r.after {
		r.cancel()
		if r.n > r.after+64<<20 {
			return 0, errIgnored
		}
	}
	p = p[:min(len(p), 64<<10)]
	clear(p)
	r.n += len(p)
	return len(p), nil
}

func testCanceled(t *testing.T, s blob.Store) {
	put(t, s, "ctx/there", []byte("x"), "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Put(ctx, "ctx/new", strings.NewReader("x"), blob.PutOptions{Size: 1})
	wantErr(t, "Put", err, context.Canceled)
	wantGone(t, s, "ctx/new")
	_, _, err = s.Get(ctx, "ctx/there")
	wantErr(t, "Get", err, context.Canceled)
	_, err = s.Stat(ctx, "ctx/there")
	wantErr(t, "Stat", err, context.Canceled)
	err = s.List(ctx, "", func(blob.Info) error { return nil })
	wantErr(t, "List", err, context.Canceled)
	err = s.Delete(ctx, "ctx/there")
	wantErr(t, "Delete", err, context.Canceled)
	if _, err := s.Stat(t.Context(), "ctx/there"); err != nil {
		t.Fatalf("canceled Delete removed the object: %v", err)
	}

	// Cancellation while the body streams, inside the first part and later.
	for _, after := range []int{1 << 20, 10 << 20} {
		ctx, cancel := context.WithCancel(t.Context())
		_, err := s.Put(ctx, "ctx/stream", stream{&cancelingReader{after: after, cancel: cancel}}, blob.PutOptions{Size: -1})
		cancel()
		wantErr(t, fmt.Sprintf("Put canceled after %d bytes", after), err, context.Canceled)
		wantGone(t, s, "ctx/stream")
	}
}
