// Package s3blob is the blob backend on S3-compatible storage (AWS S3,
// MinIO, Ceph RGW, COS, versitygw). Importing it registers the "s3" scheme:
//
//	s3://[ACCESS_KEY:SECRET@]bucket[/prefix]?endpoint=http://127.0.0.1:7070&region=us-east-1&path_style=true&part_size=8388608
//
// Credentials come from the URL's userinfo (percent-encode the secret) or,
// without it, from the standard AWS chain (environment, shared files,
// instance roles). All query parameters are optional: endpoint defaults to
// AWS, region to us-east-1 (or the AWS environment's), path_style to false,
// part_size to 8 MiB (at least 5 MiB, S3's minimum part).
//
// Presigned URLs are S3's own (SigV4 query signing) and point at the
// endpoint, which must therefore be reachable by whoever fetches them.
package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

func init() { blob.Register("s3", open) }

const (
	// DefaultPartSize is the multipart upload part size, and so the memory
	// one Put in flight holds.
	DefaultPartSize = 8 << 20
	// MinPartSize is S3's smallest allowed part (except the last).
	MinPartSize = 5 << 20
	// maxParts is S3's limit on parts per upload; with 8 MiB parts a Put
	// can store 78 GiB.
	maxParts = 10000
)

// Config is a parsed s3:// URL.
type Config struct {
	Bucket    string
	Prefix    string // "" or ending in "/"
	Endpoint  string // "" for AWS
	Region    string
	PathStyle bool
	PartSize  int
	AccessKey string // with SecretKey, overrides the AWS credential chain
	SecretKey string
}

// ParseURL parses an s3:// URL into a Config.
func ParseURL(u *url.URL) (Config, error) {
	c := Config{Bucket: u.Host, PartSize: DefaultPartSize}
	if u.Scheme != "s3" || u.Opaque != "" || c.Bucket == "" {
		return Config{}, errors.New("s3blob: want s3://bucket[/prefix]?…")
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if err := blob.ValidateKey(p); err != nil {
			return Config{}, fmt.Errorf("s3blob: prefix: %w", err)
		}
		c.Prefix = p + "/"
	}
	if u.User != nil {
		c.AccessKey = u.User.Username()
		c.SecretKey, _ = u.User.Password()
		if c.AccessKey == "" || c.SecretKey == "" {
			return Config{}, errors.New("s3blob: URL credentials need both access key and secret")
		}
	}
	for k, v := range u.Query() {
		val := v[len(v)-1]
		switch k {
		case "endpoint":
			e, err := url.Parse(val)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Config{}, fmt.Errorf("s3blob: endpoint %q is not an http(s) URL", val)
			}
			c.Endpoint = val
		case "region":
			c.Region = val
		case "path_style":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return Config{}, fmt.Errorf("s3blob: path_style: %w", err)
			}
			c.PathStyle = b
		case "part_size":
			n, err := strconv.Atoi(val)
			if err != nil || n < MinPartSize || n > 1<<30 {
				return Config{}, fmt.Errorf("s3blob: part_size %q: want %d..%d bytes", val, MinPartSize, 1<<30)
			}
			c.PartSize = n
		default:
			return Config{}, fmt.Errorf("s3blob: unknown URL parameter %q", k)
		}
	}
	return c, nil
}

// Store is a blob.Store on an S3 bucket, under an optional key prefix.
type Store struct {
	cfg     Config
	client  *s3.Client
	presign *s3.PresignClient
	log     *slog.Logger
	parts   sync.Pool // *[]byte of cfg.PartSize, reused across Puts
}

var _ blob.Store = (*Store)(nil)

func open(ctx context.Context, u *url.URL, o blob.Options) (blob.Store, error) {
	c, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return New(ctx, c, o)
}

// New connects a Store (no request is made until the first operation). Of
// o it uses Logger.
func New(ctx context.Context, c Config, o blob.Options) (*Store, error) {
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	// The SDK's own HTTP client, so AWS_CA_BUNDLE and the SDK's timeouts apply.
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3blob: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // what S3-compatible servers expect when unset
	}
	client := s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if c.Endpoint != "" {
			so.BaseEndpoint = aws.String(c.Endpoint)
		}
		so.UsePathStyle = c.PathStyle
		// Since 2025 the SDK adds CRC checksums to every upload by default,
		// which many S3-compatible servers reject; send them only where the
		// API requires them. SigV4 still covers the payload hash.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: c, client: client, presign: s3.NewPresignClient(client), log: log}
	s.parts.New = func() any { b := make([]byte, c.PartSize); return &b }
	return s, nil
}

// Client returns the underlying S3 client, for tests and administration
// (creating buckets, lifecycle rules).
func (s *Store) Client() *s3.Client { return s.client }

// objectKey maps a store key to the bucket's key, checking that the prefix
// does not push it past S3's length limit.
func (s *Store) objectKey(key string) (string, error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", err
	}
	if len(s.cfg.Prefix)+len(key) > blob.MaxKeyLen {
		return "", fmt.Errorf("%w %.64q: too long with the store's prefix %q", blob.ErrInvalidKey, key, s.cfg.Prefix)
	}
	return s.cfg.Prefix + key, nil
}

// mapErr turns S3's "no such key" into blob.ErrNotFound; a missing bucket
// stays an ordinary error because it is a configuration problem, not an
// absent object.
func mapErr(op, key string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var ae smithy.APIError
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf):
		return fmt.Errorf("s3blob: %s %q: %w", op, key, blob.ErrNotFound)
	case errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket":
		return fmt.Errorf("s3blob: %s %q: %w", op, key, err)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return fmt.Errorf("s3blob: %s %q: %w", op, key, blob.ErrNotFound)
	}
	return fmt.Errorf("s3blob: %s %q: %w", op, key, err)
}

func etag(p *string) string { return strings.Trim(aws.ToString(p), `"`) }

// Put implements blob.Store. A body that fits in one part goes up with one
// PutObject; a longer one as a multipart upload, one part in memory at a
// time, aborted on any failure. Both are atomic in S3: the object appears
// only when PutObject or CompleteMultipartUpload succeeds.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, o blob.PutOptions) (blob.Info, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return blob.Info{}, err
	}
	if err := blob.ValidateContentType(o.ContentType); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("s3blob: put %q: %w", key, err)
	}
	ct := o.ContentType
	if ct == "" {
		ct = blob.DefaultContentType
	}
	var src io.Reader = blob.ContextReader(ctx, r)
	if o.Size >= 0 {
		src = io.LimitReader(src, o.Size+1) // one more byte reveals an over-long reader
	}
	bufp := s.parts.Get().(*[]byte)
	defer s.parts.Put(bufp)
	buf := *bufp

	n, err := io.ReadFull(src, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		// Small object: one request.
		if err := checkSize(int64(n), o.Size); err != nil {
			return blob.Info{}, fmt.Errorf("s3blob: put %q: %w", key, err)
		}
		out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &s.cfg.Bucket,
			Key:           &ok,
			Body:          bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)),
			ContentType:   &ct,
		})
		if err != nil {
			return blob.Info{}, mapErr("put", key, err)
		}
		return blob.Info{Key: key, Size: int64(n), ContentType: ct, ModTime: time.Now(), ETag: etag(out.ETag)}, nil
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("s3blob: put %q: %w", key, err)
	}
	return s.putMultipart(ctx, key, ok, ct, src, buf, o.Size)
}

func checkSize(n, want int64) error {
	if want < 0 || n == want {
		return nil
	}
	if n > want {
		return fmt.Errorf("content is more than %d bytes, as PutOptions.Size says", want)
	}
	return fmt.Errorf("content is %d bytes, PutOptions.Size says %d", n, want)
}

// putMultipart uploads src in parts; buf already holds the first, full part.
func (s *Store) putMultipart(ctx context.Context, key, objKey, ct string, src io.Reader, buf []byte, want int64) (_ blob.Info, err error) {
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &objKey, ContentType: &ct,
	})
	if err != nil {
		return blob.Info{}, mapErr("put", key, err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Abort even when ctx is done, or the parts linger (and are billed)
		// until a lifecycle rule removes them.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: &s.cfg.Bucket, Key: &objKey, UploadId: up.UploadId,
		}); aerr != nil {
			s.log.Warn("blob multipart abort failed", "key", objKey, "err", aerr)
		}
	}()

	var parts []types.CompletedPart
	var total int64
	n, last := len(buf), false
	for {
		if len(parts) == maxParts {
			return blob.Info{}, fmt.Errorf("s3blob: put %q: more than %d parts of %d bytes", key, maxParts, len(buf))
		}
		num := int32(len(parts) + 1)
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &s.cfg.Bucket, Key: &objKey, UploadId: up.UploadId, PartNumber: &num,
			Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return blob.Info{}, mapErr("put", key, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: &num})
		total += int64(n)
		if last {
			break
		}
		n, err = io.ReadFull(src, buf)
		if err == io.EOF {
			break
		}
		if err == io.ErrUnexpectedEOF {
			last = true // a short final part
		} else if err != nil {
			return blob.Info{}, fmt.Errorf("s3blob: put %q: %w", key, err)
		}
	}
	if err := checkSize(total, want); err != nil {
		return blob.Info{}, fmt.Errorf("s3blob: put %q: %w", key, err)
	}
	// The body is complete; a cancellation now must not publish it.
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("s3blob: put %q: %w", key, err)
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &objKey, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return blob.Info{}, mapErr("put", key, err)
	}
	return blob.Info{Key: key, Size: total, ContentType: ct, ModTime: time.Now(), ETag: etag(out.ETag)}, nil
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return nil, blob.Info{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &ok})
	if err != nil {
		return nil, blob.Info{}, mapErr("get", key, err)
	}
	return out.Body, blob.Info{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ContentType: aws.ToString(out.ContentType),
		ModTime:     aws.ToTime(out.LastModified),
		ETag:        etag(out.ETag),
	}, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return blob.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &ok})
	if err != nil {
		return blob.Info{}, mapErr("stat", key, err)
	}
	return blob.Info{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ContentType: aws.ToString(out.ContentType),
		ModTime:     aws.ToTime(out.LastModified),
		ETag:        etag(out.ETag),
	}, nil
}

// Delete implements blob.Store; S3's DeleteObject is already idempotent.
func (s *Store) Delete(ctx context.Context, key string) error {
	ok, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &ok}); err != nil {
		return mapErr("delete", key, err)
	}
	return nil
}

// List implements blob.Store with ListObjectsV2, which returns keys in
// byte order. Listings carry no content type, so Info.ContentType is empty.
// Keys in the bucket that are not valid store keys (written by other
// tools) are skipped, since Get could not read them either.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return err
	}
	full := s.cfg.Prefix + prefix
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return mapErr("list", prefix, err)
		}
		for _, obj := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(obj.Key), s.cfg.Prefix)
			if blob.ValidateKey(key) != nil {
				s.log.Debug("blob list skipped foreign key", "key", aws.ToString(obj.Key))
				continue
			}
			if err := fn(blob.Info{
				Key:     key,
				Size:    aws.ToInt64(obj.Size),
				ModTime: aws.ToTime(obj.LastModified),
				ETag:    etag(obj.ETag),
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// PresignGet implements blob.Store with SigV4 query signing; the URL
// points at the S3 endpoint, not at the platform.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > blob.MaxPresignTTL {
		return "", fmt.Errorf("s3blob: presign %q: ttl %v outside (0, %v]", key, ttl, blob.MaxPresignTTL)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("s3blob: presign %q: %w", key, err)
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &ok}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("s3blob: presign %q: %w", key, err)
	}
	return req.URL, nil
}

// Close implements blob.Store. The SDK client holds no resources that need
// releasing (idle connections time out on their own).
func (s *Store) Close() error { return nil }
