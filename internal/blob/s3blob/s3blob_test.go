package s3blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/blob/blobtest"
	"github.com/tianshu-ai/tianshu/internal/blob/s3blob"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const (
	accessKey = "tianshu-test"
	secretKey = "tianshu-test-secret/+key" // needs escaping in URLs, on purpose
)

// gateway is a running versitygw: a real S3 implementation in its own
// process, over a posix directory in t.TempDir().
type gateway struct {
	endpoint string // http://127.0.0.1:port
	buckets  atomic.Int64
	admin    *s3.Client
}

// findVersitygw locates the binary that scripts/install-versitygw.sh builds.
func findVersitygw(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TIANSHU_VERSITYGW"); p != "" {
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for ; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".tools", "bin", "versitygw")
				if _, err := os.Stat(p); err == nil {
					return p
				}
				break
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	testenv.Unavailable(t, "versitygw not found: run scripts/install-versitygw.sh or set TIANSHU_VERSITYGW")
	return ""
}

// syncBuffer collects the gateway's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	bin := findVersitygw(t)
	// A free port can be taken between our probe and the gateway's bind,
	// so a start that fails is retried on another.
	var lastErr error
	for range 3 {
		g, err := tryStart(t, bin)
		if err == nil {
			return g
		}
		lastErr = err
	}
	t.Fatalf("versitygw did not start: %v", lastErr)
	return nil
}

func tryStart(t *testing.T, bin string) (*gateway, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	out := &syncBuffer{}
	cmd := exec.Command(bin, "--access", accessKey, "--secret", secretKey, "--port", addr, "--quiet",
		"posix", root)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", out.String())
		}
	})

	endpoint := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for stop, in cleanup
			if strings.Contains(out.String(), "xattrs are not supported") {
				// Its posix backend keeps metadata in user xattrs (the
				// sidecar alternative is not atomic with the content).
				testenv.Unavailable(t, "versitygw needs user xattrs on the temporary directory's file system; point TMPDIR elsewhere: "+out.String())
			}
			return nil, fmt.Errorf("exited (%v): %s", err, out.String())
		default:
		}
		resp, err := http.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			break // any S3 answer (403 without credentials) means it is up
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not answering on %s after 60s: %s", addr, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	admin, err := s3blob.New(t.Context(), s3blob.Config{
		Bucket: "unused", Endpoint: endpoint, Region: "us-east-1", PathStyle: true,
		AccessKey: accessKey, SecretKey: secretKey,
	}, blob.Options{})
	if err != nil {
		return nil, err
	}
	return &gateway{endpoint: endpoint, admin: admin.Client()}, nil
}

// newBucket creates an empty bucket and returns its name.
func (g *gateway) newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("tianshu-%d", g.buckets.Add(1))
	if _, err := g.admin.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return name
}

func (g *gateway) url(bucket, prefix string) string {
	return g.urlAs(url.UserPassword(accessKey, secretKey), bucket, prefix)
}

func (g *gateway) urlAs(user *url.Userinfo, bucket, prefix string) string {
	q := url.Values{
		"endpoint":   {g.endpoint},
		"region":     {"us-east-1"},
		"path_style": {"true"},
		"part_size":  {fmt.Sprint(s3blob.MinPartSize)}, // multipart from 5 MiB, to exercise it
	}
	return "s3://" + user.String() + "@" + bucket + prefix + "?" + q.Encode()
}

func (g *gateway) open(t *testing.T, rawURL string) blob.Store {
	t.Helper()
	s, err := blob.Open(t.Context(), rawURL, blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	g := startGateway(t)
	t.Run("Bucket", func(t *testing.T) {
		blobtest.Run(t, func(t *testing.T) blob.Store { return g.open(t, g.url(g.newBucket(t), "")) })
	})
	t.Run("Prefix", func(t *testing.T) {
		bucket := g.newBucket(t)
		var n atomic.Int64
		blobtest.Run(t, func(t *testing.T) blob.Store {
			return g.open(t, g.url(bucket, fmt.Sprintf("/tenant/%d", n.Add(1))))
		})
	})
}

// Other gateway behaviour the suite does not cover.
func TestGateway(t *testing.T) {
	g := startGateway(t)
	ctx := t.Context()

	t.Run("PrefixIsolation", func(t *testing.T) {
		bucket := g.newBucket(t)
		outer := g.open(t, g.url(bucket, ""))
		inner := g.open(t, g.url(bucket, "/in"))
		if _, err := inner.Put(ctx, "k", strings.NewReader("v"), blob.PutOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := outer.Stat(ctx, "in/k"); err != nil {
			t.Fatalf("object not stored under the prefix: %v", err)
		}
		if _, err := outer.Put(ctx, "out", strings.NewReader("v"), blob.PutOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
		var keys []string
		if err := inner.List(ctx, "", func(i blob.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0] != "k" {
			t.Fatalf("prefixed List = %q, want [k]", keys)
		}
		// The prefix counts towards S3's key length limit.
		long := strings.Repeat("x/", 509) + "xx" // 1020 bytes; 1023 with "in/"
		if _, err := inner.Stat(ctx, long+"yy"); !errors.Is(err, blob.ErrInvalidKey) {
			t.Fatalf("Stat of a key too long with the prefix: %v", err)
		}
	})

	t.Run("MissingBucket", func(t *testing.T) {
		s := g.open(t, g.url("no-such-bucket", ""))
		_, err := s.Stat(ctx, "k")
		if err == nil {
			t.Fatal("Stat in a missing bucket succeeded")
		}
		_, err = s.Put(ctx, "k", strings.NewReader("v"), blob.PutOptions{Size: 1})
		if err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Put to a missing bucket = %v, want an error that is not ErrNotFound", err)
		}
	})

	t.Run("WrongSecret", func(t *testing.T) {
		s := g.open(t, g.urlAs(url.UserPassword(accessKey, "wrong"), g.newBucket(t), ""))
		if _, err := s.Put(ctx, "k", strings.NewReader("v"), blob.PutOptions{Size: 1}); err == nil {
			t.Fatal("Put with a wrong secret succeeded")
		}
	})

	t.Run("NoLeftoverUploads", func(t *testing.T) {
		bucket := g.newBucket(t)
		s := g.open(t, g.url(bucket, ""))
		boom := errors.New("boom")
		body := &failAfter{n: 12 << 20, err: boom}
		if _, err := s.Put(ctx, "big", body, blob.PutOptions{Size: -1}); !errors.Is(err, boom) {
			t.Fatalf("Put = %v", err)
		}
		out, err := g.admin.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 0 {
			t.Fatalf("%d multipart uploads left after a failed Put", len(out.Uploads))
		}
	})
}

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	clear(p)
	f.n -= len(p)
	return len(p), nil
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want s3blob.Config
	}{
		{"s3://b", s3blob.Config{Bucket: "b", PartSize: s3blob.DefaultPartSize}},
		{"s3://AK:S%2FK@b/p/q/?endpoint=http://h:1&region=r&path_style=true&part_size=6000000",
			s3blob.Config{Bucket: "b", Prefix: "p/q/", Endpoint: "http://h:1", Region: "r", PathStyle: true, PartSize: 6000000, AccessKey: "AK", SecretKey: "S/K"}},
	} {
		u, _ := url.Parse(tc.in)
		got, err := s3blob.ParseURL(u)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%s) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"s3:///p", "s3://b?endpoint=ftp://h", "s3://b?path_style=maybe", "s3://b?part_size=1024",
		"s3://b?nope=1", "s3://AK@b", "s3://b/../x", "s3://b/a//c",
	} {
		u, err := url.Parse(bad)
		if err != nil {
			continue
		}
		if _, err := s3blob.ParseURL(u); err == nil {
			t.Errorf("ParseURL(%s) succeeded", bad)
		}
	}
}

func TestOpenRedactsSecret(t *testing.T) {
	_, err := blob.Open(context.Background(), "s3://AK:topsecret@b?bogus=1", blob.Options{})
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("Open error = %v; want an error without the secret", err)
	}
}
