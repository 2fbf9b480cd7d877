package data_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestUploadHashedWhileWritten: an upload written through one process has
// its SHA-256 stored when its last PATCH is answered, over every PATCH; one
// whose running hash was lost (a chunk refused for its checksum) gets it
// from RunDigests after its last PATCH.
func TestUploadHashedWhileWritten(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.clk.set(time.Now())
		tok, _, err := e.svc.NewUploadToken("default", 0)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(e.svc.Handler())
		defer srv.Close()
		c := &tusClient{t: t, base: srv.URL, token: tok}
		// Larger than the 1 MiB copy buffers, so that each PATCH is
		// hashed in several pieces.
		content := make([]byte, 5<<20+777)
		_, _ = rand.Read(content)
		sum := sha256.Sum256(content)
		want := hex.EncodeToString(sum[:])
		third := len(content) / 3

		// Three PATCHes, the second with a checksum: no digest worker
		// runs, so the hash can only come from the PATCHes.
		path := c.create(len(content), "a.bin")
		wantStatus(t, "first PATCH", c.patch(path, 0, content[:third], ""), http.StatusNoContent)
		wantStatus(t, "second PATCH", c.patch(path, third, content[third:2*third], sha1sum(content[third:2*third])), http.StatusNoContent)
		wantStatus(t, "last PATCH", c.patch(path, 2*third, content[2*third:], ""), http.StatusNoContent)
		up, err := e.svc.Upload(ctx, strings.TrimPrefix(path, "/files/"))
		if err != nil {
			t.Fatal(err)
		}
		if up.State != data.UploadCompleted || up.SHA256 != want {
			t.Fatalf("upload right after its last PATCH: state %s, sha256 %q, want %q", up.State, up.SHA256, want)
		}

		// A refused chunk drops the running hash: the digest comes after
		// the last PATCH, and is right.
		path = c.create(len(content), "b.bin")
		wantStatus(t, "first PATCH", c.patch(path, 0, content[:third], ""), http.StatusNoContent)
		wantStatus(t, "PATCH with a bad checksum", c.patch(path, third, content[third:], sha1sum([]byte("other"))), 460)
		wantStatus(t, "last PATCH", c.patch(path, third, content[third:], ""), http.StatusNoContent)
		id := strings.TrimPrefix(path, "/files/")
		if up, err = e.svc.Upload(ctx, id); err != nil {
			t.Fatal(err)
		}
		if up.State != data.UploadCompleted || up.SHA256 != "" {
			t.Fatalf("upload after a refused chunk, right after its last PATCH: state %s, sha256 %q, want it empty until RunDigests", up.State, up.SHA256)
		}
		dctx, stop := context.WithCancel(ctx)
		defer stop()
		go e.svc.RunDigests(dctx)
		testenv.Eventually(t, 30*time.Second, "the digest after a refused chunk", func() bool {
			if up, err = e.svc.Upload(ctx, id); err != nil {
				t.Fatal(err)
			}
			return up.SHA256 != ""
		})
		if up.SHA256 != want {
			t.Errorf("digest after a refused chunk %q, want %q", up.SHA256, want)
		}
	})
}
