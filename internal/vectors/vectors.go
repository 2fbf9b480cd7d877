// Package vectors is Tianshu's vector index (issue #29): embeddings of
// records (faces today) kept for nearest-neighbour search, partitioned by
// project and record type, filtered by device, task and time.
//
// Like the store, the bus and the blob store it is a backend chosen by URL:
// the embedded default is an HNSW graph persisted in the data directory
// (hnsw:///dir), the embedded alternative for fast inserts an inverted file
// of int8 rows (ivf:///dir); scaled out it is PostgreSQL with pgvector
// (postgres://…).
// The index is derived data: the store keeps every embedding, and an
// embedded index that is missing or corrupt is rebuilt from a Source while
// Search answers ErrUnavailable. Every backend passes the conformance suite
// in vectortest; callers may rely on what it checks and nothing else.
package vectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits every backend enforces, so that one caller cannot make an index
// hold or return unbounded data.
const (
	// MaxDim is the largest embedding dimension (faceres' 1024 fits with
	// room; text models' 4096 would not be a face index's business).
	MaxDim = 2048
	// MaxK is the most neighbours one Search returns (a page's Offset +
	// Limit included).
	MaxK = 1000
	// MaxBatch is the most items one Upsert or ids one Delete takes.
	MaxBatch = 10000
	// MaxIDLen bounds ids and the project, type, device and task strings.
	MaxIDLen = 128
)

var (
	// ErrUnavailable means the index cannot answer now (it is being rebuilt
	// from the store, or its engine cannot be reached); nothing was
	// changed and the caller may retry later (API: ResourceUnavailable).
	ErrUnavailable = errors.New("vectors: index unavailable")
	// ErrDimension means a vector's length differs from that of the
	// partition (project and type) it goes into or is searched in, or is
	// out of range; the message says both.
	ErrDimension = errors.New("vectors: wrong dimension")
	// ErrInvalid wraps every other refusal of an argument; the message
	// names the field.
	ErrInvalid = errors.New("vectors: invalid argument")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("vectors: index closed")
)

// Item is one embedding: a record's id, where it comes from, and its
// vector. Vectors are compared by cosine similarity; backends normalize
// them, so callers need not.
type Item struct {
	// ID is the record's id, unique across the index: upserting an id
	// again replaces its item (in whatever partition it was).
	ID        string
	ProjectID string
	// Type is the record type ("face"); with ProjectID it names the
	// partition the item is searched in.
	Type     string
	DeviceID string
	TaskID   string
	// Time is the record's time (kept to the millisecond).
	Time   time.Time
	Vector []float32
}

// Filter narrows a Search. ProjectID and Type are required: every search
// stays inside one partition. The other fields filter when set: each list
// is an OR of its values, the fields are ANDed.
type Filter struct {
	ProjectID string
	Type      string
	DeviceIDs []string
	TaskIDs   []string
	// Start (inclusive) and End (exclusive) bound the item's Time; zero
	// leaves that side open.
	Start, End time.Time
	// MinSimilarity drops hits below it (cosine similarity, -1..1; 0
	// keeps everything not opposite).
	MinSimilarity float32
}

// Hit is one search result.
type Hit struct {
	ID         string
	DeviceID   string
	TaskID     string
	Time       time.Time
	Similarity float32 // cosine similarity, 1 for the same direction
}

// Stats describes an index for metrics and benchmarks.
type Stats struct {
	Items      int   // live items
	Partitions int   // project and type pairs
	DiskBytes  int64 // on-disk size where the backend knows it, else 0
}

// Index is a vector index. Methods are safe for concurrent use. Upsert and
// Delete return once the change is durable (it survives kill -9), so an
// acknowledged change is never lost; Search sees every change whose
// Upsert or Delete has returned.
type Index interface {
	// Upsert adds items or replaces those whose id exists. A batch is
	// checked whole before anything is written: a refused item
	// (ErrInvalid, ErrDimension) refuses the batch.
	Upsert(ctx context.Context, items []Item) error
	// Delete removes items by id; unknown ids are ignored.
	Delete(ctx context.Context, ids []string) error
	// Search returns up to k hits most similar to v among the items f
	// selects, most similar first (ties by id). k must be 1..MaxK. An
	// empty partition gives no hits; a vector of another dimension than
	// the partition's is ErrDimension.
	Search(ctx context.Context, v []float32, k int, f Filter) ([]Hit, error)
	// Stats reports the index's size.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the index, writing what it keeps in memory; methods
	// called afterwards return ErrClosed.
	Close() error
}

// Source yields every stored item, for rebuilding an index; it stops and
// returns yield's error when yield fails.
type Source func(ctx context.Context, yield func(Item) error) error

// Options are what the platform gives a backend when it opens an index.
type Options struct {
	// DataDir is the platform's data directory; the embedded backends
	// default to <DataDir>/vectors (hnsw) and <DataDir>/vectors-ivf (ivf)
	// when their URL names no directory.
	DataDir string
	// Source rebuilds the embedded index when it is missing or corrupt;
	// nil starts an empty index instead.
	Source Source
	// Logger receives the index's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the tianshu_vectors_* metrics; nil keeps them
	// unregistered.
	Registerer prometheus.Registerer
}

// Factory opens an index for a parsed URL whose scheme it was registered
// for.
type Factory func(ctx context.Context, u *url.URL, o Options) (Index, error)

// The registry is the package's only mutable state: backends add themselves
// from init functions, so a binary chooses its backends with blank imports.
var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a backend available to Open under a URL scheme. It panics
// when the scheme is taken or f is nil: a wiring bug to catch at start-up.
func Register(scheme string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if f == nil {
		panic("vectors: Register factory is nil for scheme " + scheme)
	}
	if _, dup := registry[scheme]; dup {
		panic("vectors: Register called twice for scheme " + scheme)
	}
	registry[scheme] = f
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s := make([]string, 0, len(registry))
	for k := range registry {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open opens the index rawURL names (hnsw:///dir, postgres://…) with the
// backend registered for its scheme, which must be linked in.
func Open(ctx context.Context, rawURL string, o Options) (Index, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse errors quote the URL, which may hold credentials.
		return nil, fmt.Errorf("vectors: parse index URL: invalid URL")
	}
	registryMu.RLock()
	f := registry[u.Scheme]
	registryMu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("vectors: no backend for scheme %q in %s (registered: %v)", u.Scheme, u.Redacted(), Schemes())
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ix, err := f(ctx, u, o)
	if err != nil {
		return nil, fmt.Errorf("vectors: open %s: %w", u.Redacted(), err)
	}
	return ix, nil
}

// CheckItems checks a batch as every backend must before writing: limits,
// UTF-8, finite non-zero vectors, one dimension per partition within the
// batch. dimOf returns a partition's dimension (0: none yet).
func CheckItems(items []Item, dimOf func(project, typ string) int) error {
	if len(items) > MaxBatch {
		return fmt.Errorf("%w: %d items; at most %d a batch", ErrInvalid, len(items), MaxBatch)
	}
	batchDims := map[[2]string]int{}
	for i := range items {
		it := &items[i]
		if it.ID == "" {
			return fmt.Errorf("%w: items[%d].ID is empty", ErrInvalid, i)
		}
		if it.ProjectID == "" || it.Type == "" {
			return fmt.Errorf("%w: items[%d]: ProjectID and Type are required", ErrInvalid, i)
		}
		for _, f := range []struct{ name, v string }{{"ID", it.ID}, {"ProjectID", it.ProjectID}, {"Type", it.Type}, {"DeviceID", it.DeviceID}, {"TaskID", it.TaskID}} {
			if len(f.v) > MaxIDLen || !utf8.ValidString(f.v) {
				return fmt.Errorf("%w: items[%d].%s is longer than %d bytes or not UTF-8", ErrInvalid, i, f.name, MaxIDLen)
			}
		}
		if err := CheckVector(it.Vector, fmt.Sprintf("items[%d].Vector", i)); err != nil {
			return err
		}
		key := [2]string{it.ProjectID, it.Type}
		want := batchDims[key]
		if want == 0 && dimOf != nil {
			want = dimOf(it.ProjectID, it.Type)
		}
		if want != 0 && want != len(it.Vector) {
			return fmt.Errorf("%w: items[%d].Vector has %d dimensions; partition %s/%s holds %d", ErrDimension, i, len(it.Vector), it.ProjectID, it.Type, want)
		}
		batchDims[key] = len(it.Vector)
	}
	return nil
}

// CheckVector refuses empty, oversized, zero and non-finite vectors; field
// names the vector in the message.
func CheckVector(v []float32, field string) error {
	if len(v) == 0 || len(v) > MaxDim {
		return fmt.Errorf("%w: %s has %d dimensions; 1 to %d are allowed", ErrDimension, field, len(v), MaxDim)
	}
	var n float64
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: %s holds a NaN or infinite value", ErrInvalid, field)
		}
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s is the zero vector, which has no direction", ErrInvalid, field)
	}
	return nil
}

// CheckSearch checks Search's arguments other than the dimension.
func CheckSearch(v []float32, k int, f Filter) error {
	if k < 1 || k > MaxK {
		return fmt.Errorf("%w: k is %d; 1 to %d are allowed", ErrInvalid, k, MaxK)
	}
	if f.ProjectID == "" || f.Type == "" {
		return fmt.Errorf("%w: Filter.ProjectID and Filter.Type are required", ErrInvalid)
	}
	if len(f.DeviceIDs) > MaxBatch || len(f.TaskIDs) > MaxBatch {
		return fmt.Errorf("%w: Filter lists hold at most %d values", ErrInvalid, MaxBatch)
	}
	return CheckVector(v, "vector")
}

// CheckDelete checks Delete's ids.
func CheckDelete(ids []string) error {
	if len(ids) > MaxBatch {
		return fmt.Errorf("%w: %d ids; at most %d a batch", ErrInvalid, len(ids), MaxBatch)
	}
	for i, id := range ids {
		if id == "" || len(id) > MaxIDLen {
			return fmt.Errorf("%w: ids[%d] is empty or longer than %d bytes", ErrInvalid, i, MaxIDLen)
		}
	}
	return nil
}

// Normalize returns v scaled to unit length, as a new slice.
func Normalize(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 {
		return out
	}
	inv := float32(1 / math.Sqrt(n))
	for i, x := range v {
		out[i] = x * inv
	}
	return out
}

// Dot is the inner product of two vectors of the same length (the cosine
// similarity of unit vectors); b must be at least as long as a. It is the
// index's inner loop: on amd64 with AVX2 and FMA it runs in assembly
// (dot_amd64.s), elsewhere in Go unrolled by eight.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	if len(a) == 0 {
		return 0
	}
	return dot(a, b)
}

// DotRows sets out[i] to the inner product of q with the i-th of the
// len(out) rows of len(q) values that lie back to back in rows, which
// must hold them all. It is Dot for many rows at once (an IVF index's
// centroids): on amd64 with AVX2 and FMA, eight rows share each load of
// q, about twice as fast as a Dot per row at 128 dimensions.
func DotRows(out, q, rows []float32) {
	d := len(q)
	rows = rows[:len(out)*d]
	i := 0
	if d > 0 {
		for ; i+8 <= len(out); i += 8 {
			if !dot8(q, rows[i*d:(i+8)*d], (*[8]float32)(out[i:i+8])) {
				break
			}
		}
	}
	for ; i < len(out); i++ {
		out[i] = Dot(q, rows[i*d:(i+1)*d])
	}
}

// dotGo is Dot in Go, for other architectures and as the reference the
// assembly is tested against.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
		s4 += a[i+4] * b[i+4]
		s5 += a[i+5] * b[i+5]
		s6 += a[i+6] * b[i+6]
		s7 += a[i+7] * b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}

// Matches reports whether an item with these fields passes f's device,
// task and time filters (not the partition, not the similarity).
func (f *Filter) Matches(device, task string, t time.Time) bool {
	if len(f.DeviceIDs) > 0 && !contains(f.DeviceIDs, device) {
		return false
	}
	if len(f.TaskIDs) > 0 && !contains(f.TaskIDs, task) {
		return false
	}
	if !f.Start.IsZero() && t.Before(f.Start) {
		return false
	}
	if !f.End.IsZero() && !t.Before(f.End) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SortHits orders hits most similar first, ties by id.
func SortHits(h []Hit) {
	sort.Slice(h, func(i, j int) bool {
		if h[i].Similarity != h[j].Similarity {
			return h[i].Similarity > h[j].Similarity
		}
		return h[i].ID < h[j].ID
	})
}
