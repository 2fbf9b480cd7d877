// Package data is Tianshu's data center (DESIGN §10): the records tasks
// produce (structured JSON documents indexed by task, device, type and
// time, written in batches), the objects they refer to (crops, frames) in
// the blob store behind signed URLs, retention per task, and resumable
// tus 1.0 uploads at /files/ authorized by short-lived upload tokens.
package data

import (
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// Defaults of Options.
const (
	DefaultTokenTTL      = 15 * time.Minute
	DefaultUploadTTL     = 24 * time.Hour
	DefaultURLTTL        = time.Hour
	DefaultMaxUploadSize = 64 << 30
)

// ErrNoUploads is returned by upload operations of a Service built without
// a TokenKey or a StagingDir.
var ErrNoUploads = errors.New("data: uploads are not configured (TokenKey and StagingDir are required)")

// Options are the data center's collaborators and limits; every field is
// optional, but uploads need TokenKey and StagingDir.
type Options struct {
	// Logger receives the data center's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the tianshu_data_* metrics; nil keeps them
	// unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TokenKey signs upload tokens. Every replica must share it (derive it
	// from the master key).
	TokenKey []byte
	// StagingDir holds partial tus uploads (<data-dir>/uploads). Uploads
	// resume only on a replica that sees the same directory.
	StagingDir string
	// PublicURL is the platform's external base URL; CreateUploadToken
	// returns the tus endpoint on it ("" returns the path /files/).
	PublicURL string
	// TokenTTL is how long an upload token is valid (DefaultTokenTTL).
	TokenTTL time.Duration
	// UploadTTL is how long an incomplete upload may take before it expires
	// and its staged bytes are deleted (DefaultUploadTTL).
	UploadTTL time.Duration
	// URLTTL is the validity of the signed object URLs in record responses
	// (DefaultURLTTL).
	URLTTL time.Duration
	// MaxUploadSize bounds every upload, whatever a token allows
	// (DefaultMaxUploadSize).
	MaxUploadSize int64
}

// Service is the data center over the metadata store and the blob store.
type Service struct {
	db    *store.DB
	blobs blob.Store
	o     Options
	log   *slog.Logger
	m     *metrics
	up    *uploads // nil without TokenKey and StagingDir
	// digests holds completed uploads waiting for their SHA-256.
	digests chan string

	stmtMu  sync.Mutex
	insStmt *sql.Stmt // see fullInsert

	vectors  vectors.Index // nil: embeddings are stored, not indexed; see UseVectors
	embedder FaceEmbedder  // nil: SearchFaces takes no Image
	watch    watchCache    // projects' watchlists in memory (MatchFace)

	quotas  api.Quotas // nil: no storage quota; set before serving
	quotaMu sync.Mutex
	storage map[string]storageUse // by project; see admitStorage
}

// New returns the data center over db and blobs. It fails only when the
// metrics cannot be registered.
func New(db *store.DB, blobs blob.Store, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.UploadTTL <= 0 {
		o.UploadTTL = DefaultUploadTTL
	}
	if o.URLTTL <= 0 {
		o.URLTTL = DefaultURLTTL
	}
	if o.URLTTL > blob.MaxPresignTTL {
		o.URLTTL = blob.MaxPresignTTL
	}
	if o.MaxUploadSize <= 0 {
		o.MaxUploadSize = DefaultMaxUploadSize
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, blobs: blobs, o: o, log: o.Logger, m: m,
		digests: make(chan string, digestQueue), storage: map[string]storageUse{}}
	if len(o.TokenKey) > 0 && o.StagingDir != "" {
		if s.up, err = s.newUploads(); err != nil {
			return nil, err
		}
	}
	return s, nil
}
