package data_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// tusClient speaks tus 1.0 the way the reference clients do.
type tusClient struct {
	t     *testing.T
	base  string // server URL
	token string
}

func (c *tusClient) do(method, path string, hdr map[string]string, body io.Reader) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	if c.token != "" {
		req.Header.Set("Upload-Token", c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// create starts an upload and returns its path (/files/<id>).
func (c *tusClient) create(size int, name string) string {
	c.t.Helper()
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte(name)) + ",filetype " + base64.StdEncoding.EncodeToString([]byte("video/mp4"))
	resp := c.do("POST", "/files/", map[string]string{"Upload-Length": strconv.Itoa(size), "Upload-Metadata": meta}, nil)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("create: %s", resp.Status)
	}
	if resp.Header.Get("Upload-Expires") == "" {
		c.t.Error("create: no Upload-Expires")
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(u.Path, "/files/upl-") {
		c.t.Fatalf("create: Location %q", resp.Header.Get("Location"))
	}
	return u.Path
}

func (c *tusClient) patch(path string, offset int, chunk []byte, sum string) *http.Response {
	c.t.Helper()
	h := map[string]string{"Upload-Offset": strconv.Itoa(offset), "Content-Type": "application/offset+octet-stream"}
	if sum != "" {
		h["Upload-Checksum"] = sum
	}
	return c.do("PATCH", path, h, bytes.NewReader(chunk))
}

func (c *tusClient) offset(path string) int {
	c.t.Helper()
	resp := c.do("HEAD", path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("HEAD %s: %s", path, resp.Status)
	}
	n, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	if err != nil {
		c.t.Fatalf("HEAD: Upload-Offset %q", resp.Header.Get("Upload-Offset"))
	}
	return n
}

func sha1sum(b []byte) string {
	s := sha1.Sum(b)
	return "sha1 " + base64.StdEncoding.EncodeToString(s[:])
}

func wantStatus(t *testing.T, what string, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("%s: %s, want %d", what, resp.Status, code)
	}
}

func TestUploadResumesAfterRestart(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.clk.set(time.Now())
		tok, _, err := e.svc.NewUploadToken("default", 0)
		if err != nil {
			t.Fatal(err)
		}
		content := make([]byte, 3<<20+12345)
		_, _ = rand.Read(content)
		quarter := len(content) / 4

		srv := httptest.NewServer(e.svc.Handler())
		c := &tusClient{t: t, base: srv.URL, token: tok}
		// Discovery announces the extensions, without a token.
		opt := (&tusClient{t: t, base: srv.URL}).do("OPTIONS", "/files/", nil, nil)
		if x := opt.Header.Get("Tus-Extension"); !strings.Contains(x, "creation") || !strings.Contains(x, "checksum") ||
			!strings.Contains(x, "termination") || !strings.Contains(x, "expiration") || !strings.Contains(opt.Header.Get("Tus-Checksum-Algorithm"), "sha1") {
			t.Errorf("OPTIONS: Tus-Extension %q", x)
		}
		path := c.create(len(content), "../clip 1.mp4")
		resp := c.patch(path, 0, content[:quarter], sha1sum(content[:quarter]))
		wantStatus(t, "first PATCH", resp, http.StatusNoContent)

		// A second PATCH is cut off halfway: the connection drops and the
		// server goes down with it.
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("PATCH", srv.URL+path, pr)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Token", tok)
		req.Header.Set("Upload-Offset", strconv.Itoa(quarter))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.ContentLength = int64(len(content) - quarter)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		if _, err := pw.Write(content[quarter : 2*quarter]); err != nil {
			t.Fatal(err)
		}
		// Cut when the server has staged some of it.
		staged := filepath.Join(e.dir, "uploads", strings.TrimPrefix(path, "/files/"))
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
			if fi, err := os.Stat(staged); err == nil && fi.Size() > int64(quarter) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the second PATCH's bytes never reached the staging file")
			}
		}
		srv.CloseClientConnections()
		pw.CloseWithError(io.ErrUnexpectedEOF)
		<-done
		srv.Close()

		// A new process over the same staging dir and store.
		svc2 := e.service(t)
		srv2 := httptest.NewServer(svc2.Handler())
		defer srv2.Close()
		c.base = srv2.URL
		off := c.offset(path)
		t.Logf("offset after the cut-off PATCH and a restart: %d of %d", off, len(content))
		if off <= quarter || off > 2*quarter {
			t.Fatalf("offset after restart %d, want in [%d, %d]", off, quarter, 2*quarter)
		}
		// A chunk with a wrong checksum is refused and not stored.
		resp = c.patch(path, off, content[off:], sha1sum([]byte("something else")))
		wantStatus(t, "PATCH with a bad checksum", resp, 460)
		if got := c.offset(path); got != off {
			t.Fatalf("offset after a refused chunk %d, want %d", got, off)
		}
		wantStatus(t, "PATCH with an unknown checksum algorithm", c.patch(path, off, content[off:], "crc99 AAAA"), http.StatusBadRequest)
		wantStatus(t, "PATCH at a wrong offset", c.patch(path, off+1, content[off+1:], ""), http.StatusConflict)
		resp = c.patch(path, off, content[off:], sha1sum(content[off:]))
		wantStatus(t, "last PATCH", resp, http.StatusNoContent)
		if resp.Header.Get("Upload-Offset") != strconv.Itoa(len(content)) {
			t.Errorf("last PATCH: Upload-Offset %q", resp.Header.Get("Upload-Offset"))
		}

		// The object is in the blob store and the staging area is empty.
		// The content's hash follows the 204: this process stops before it
		// computes it, and the next one finds it missing in its retention
		// round.
		id := strings.TrimPrefix(path, "/files/")
		up, err := svc2.Upload(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if up.State != data.UploadCompleted || up.SHA256 != "" {
			t.Fatalf("upload right after its last PATCH: %+v", up)
		}
		svc3 := e.service(t)
		if _, err := svc3.NewRetention(data.RetentionOptions{}).RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		dctx, stop := context.WithCancel(ctx)
		defer stop()
		go svc3.RunDigests(dctx)
		testenv.Eventually(t, 30*time.Second, "the digest after the restart", func() bool {
			if up, err = svc3.Upload(ctx, id); err != nil {
				t.Fatal(err)
			}
			return up.SHA256 != ""
		})
		want := sha256.Sum256(content)
		if up.State != data.UploadCompleted || up.SHA256 != hex.EncodeToString(want[:]) || up.Size != int64(len(content)) ||
			up.BlobKey != "uploads/default/"+id+"/clip 1.mp4" || up.ContentType != "video/mp4" {
			t.Errorf("upload %+v", up)
		}
		rc, info, err := e.blobs.Get(ctx, up.BlobKey)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, _ = io.Copy(h, rc)
		rc.Close()
		if hex.EncodeToString(h.Sum(nil)) != up.SHA256 || info.Size != int64(len(content)) {
			t.Errorf("stored object: sha256 %x, size %d", h.Sum(nil), info.Size)
		}
		if left, _ := os.ReadDir(filepath.Join(e.dir, "uploads")); len(left) != 0 {
			t.Errorf("staging dir still holds %d files", len(left))
		}
		// A client that lost the last answer learns the upload is complete.
		if got := c.offset(path); got != len(content) {
			t.Errorf("HEAD after completion: offset %d", got)
		}
		wantStatus(t, "repeated last PATCH", c.patch(path, len(content), nil, ""), http.StatusNoContent)
	})
}

func TestUploadAuthorization(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	e := newEnv(t, db)
	srv := httptest.NewServer(e.svc.Handler())
	defer srv.Close()
	tok, _, err := e.svc.NewUploadToken("default", 100)
	if err != nil {
		t.Fatal(err)
	}
	c := &tusClient{t: t, base: srv.URL, token: tok}
	post := func(c *tusClient, size int) *http.Response {
		return c.do("POST", "/files/", map[string]string{"Upload-Length": strconv.Itoa(size)}, nil)
	}
	wantStatus(t, "no token", post(&tusClient{t: t, base: srv.URL}, 10), http.StatusUnauthorized)
	wantStatus(t, "forged token", post(&tusClient{t: t, base: srv.URL, token: tok[:len(tok)-2] + "xx"}, 10), http.StatusUnauthorized)
	other, err := data.New(db, e.blobs, data.Options{Now: e.clk.now, TokenKey: []byte("another key")})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, _ := other.NewUploadToken("default", 0)
	wantStatus(t, "token of another key", post(&tusClient{t: t, base: srv.URL, token: foreign}, 10), http.StatusUnauthorized)
	wantStatus(t, "beyond the token's max size", post(c, 101), http.StatusRequestEntityTooLarge)

	// Authorization: Bearer works as well as Upload-Token.
	req, _ := http.NewRequest("POST", srv.URL+"/files/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", "100")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, "bearer token", resp, http.StatusCreated)
	path, _ := url.Parse(resp.Header.Get("Location"))

	// Another project's token does not see the upload.
	tokB, _, _ := e.svc.NewUploadToken("prj-b", 0)
	wantStatus(t, "HEAD with another project's token", (&tusClient{t: t, base: srv.URL, token: tokB}).do("HEAD", path.Path, nil, nil), http.StatusNotFound)
	wantStatus(t, "HEAD unknown upload", c.do("HEAD", "/files/upl-nope", nil, nil), http.StatusNotFound)

	// Termination removes the staged upload.
	wantStatus(t, "DELETE", c.do("DELETE", path.Path, nil, nil), http.StatusNoContent)
	wantStatus(t, "HEAD after DELETE", c.do("HEAD", path.Path, nil, nil), http.StatusNotFound)

	// Tokens expire.
	e.clk.advance(data.DefaultTokenTTL + time.Second)
	wantStatus(t, "expired token", post(c, 10), http.StatusUnauthorized)
}

func TestUploadExpiration(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	e := newEnv(t, db)
	srv := httptest.NewServer(e.svc.Handler())
	defer srv.Close()
	tok, _, _ := e.svc.NewUploadToken("", 0)
	c := &tusClient{t: t, base: srv.URL, token: tok}
	path := c.create(10, "a.bin")
	wantStatus(t, "PATCH", c.patch(path, 0, []byte("12345"), ""), http.StatusNoContent)
	id := strings.TrimPrefix(path, "/files/")

	e.clk.advance(data.DefaultUploadTTL + time.Second)
	tok, _, _ = e.svc.NewUploadToken("", 0)
	c.token = tok
	wantStatus(t, "HEAD after expiry", c.do("HEAD", path, nil, nil), http.StatusGone)
	if _, err := e.svc.NewRetention(data.RetentionOptions{}).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	up, err := e.svc.Upload(context.Background(), id)
	if err != nil || up.State != data.UploadExpired {
		t.Errorf("after the retention round: %+v, %v", up, err)
	}
	if left, _ := os.ReadDir(filepath.Join(e.dir, "uploads")); len(left) != 0 {
		t.Errorf("staging dir still holds %d files", len(left))
	}
}
