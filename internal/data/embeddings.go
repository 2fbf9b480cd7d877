package data

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// EmbeddingField is the top-level field of a stored record's data that
// holds its embedding (a list of numbers, say a face's descriptor). The
// record sink moves it out of the record's JSON document into
// Record.Embedding: it is stored beside the record, indexed for
// SearchFaces, and not returned with the record.
const EmbeddingField = "Embedding"

// UseVectors makes the data center keep ix up to date: records with an
// Embedding are upserted as they are written and deleted with their
// records (DeleteRecords, retention). Call it before serving.
func (s *Service) UseVectors(ix vectors.Index) { s.vectors = ix }

// Vectors returns the index set by UseVectors, or nil.
func (s *Service) Vectors() vectors.Index { return s.vectors }

// takeEmbedding returns a record's data without EmbeddingField (a
// shallow copy: the flow may share the map) and the field's values; a
// null field is dropped without an embedding, and a field that is not a
// list of numbers stays in the document.
func takeEmbedding(data any) (any, []float32) {
	m, ok := data.(map[string]any)
	if !ok {
		return data, nil
	}
	raw, ok := m[EmbeddingField]
	if !ok {
		return data, nil
	}
	var out []float32
	switch x := raw.(type) {
	case nil: // a describing node that failed and was skipped: no embedding
	case []float32:
		out = append(out, x...)
	case []float64:
		for _, f := range x {
			out = append(out, float32(f))
		}
	case []any:
		out = make([]float32, 0, len(x))
		for _, e := range x {
			f, ok := toFloat(e)
			if !ok {
				return data, nil
			}
			out = append(out, float32(f))
		}
	default:
		return data, nil
	}
	rest := make(map[string]any, len(m)-1)
	for k, v := range m {
		if k != EmbeddingField {
			rest[k] = v
		}
	}
	return rest, out
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// encodeVector is the stored form of an embedding: little-endian float32
// values, base64.
func encodeVector(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decodeVector(s string, dim int) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 4*dim {
		return nil, fmt.Errorf("data: stored embedding is not %d float32 values", dim)
	}
	v := make([]float32, dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func (r *Record) vectorItem() vectors.Item {
	return vectors.Item{ID: r.ID, ProjectID: r.ProjectID, Type: r.Type, DeviceID: r.DeviceID, TaskID: r.TaskID, Time: r.Time, Vector: r.Embedding}
}

// indexEmbeddings upserts the embeddings of recs into the vector index
// before their records commit: a crash in between leaves index entries
// without records, which SearchFaces drops, never a stored record missing
// from the index. Embeddings the index refuses (another dimension than
// their partition's: a different model) are stored but not indexed, and
// counted; an index that cannot be reached fails the batch, which its
// sources then redeliver.
func (s *Service) indexEmbeddings(ctx context.Context, recs []Record) error {
	if s.vectors == nil {
		return nil
	}
	var items []vectors.Item
	for i := range recs {
		if len(recs[i].Embedding) > 0 {
			items = append(items, recs[i].vectorItem())
		}
	}
	for lo := 0; lo < len(items); lo += vectors.MaxBatch {
		batch := items[lo:min(lo+vectors.MaxBatch, len(items))]
		err := s.vectors.Upsert(ctx, batch)
		if err == nil {
			continue
		}
		if !errors.Is(err, vectors.ErrDimension) && !errors.Is(err, vectors.ErrInvalid) {
			return fmt.Errorf("data: index embeddings: %w", err)
		}
		// One refused item refuses its batch: index the others one by one.
		for _, it := range batch {
			if err := s.vectors.Upsert(ctx, []vectors.Item{it}); err != nil {
				if !errors.Is(err, vectors.ErrDimension) && !errors.Is(err, vectors.ErrInvalid) {
					return fmt.Errorf("data: index embeddings: %w", err)
				}
				s.m.embeddingsRefused.Inc()
				s.log.Warn("embedding not indexed", "record", it.ID, "project", it.ProjectID, "type", it.Type, "err", err)
			}
		}
	}
	return nil
}

// insertEmbeddings stores the embeddings of recs in the transaction that
// stores the records.
func (s *Service) insertEmbeddings(ctx context.Context, tx *store.Tx, recs []Record) error {
	const cols = 8
	var args []any
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		q := "INSERT INTO record_embeddings (record_id, project_id, task_id, device_id, type, time_ms, dim, vector) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", n), ",") + s.db.Dialect().OnConflict([]string{"record_id"})
		_, err := tx.Exec(ctx, q, args...)
		args, n = args[:0], 0
		if err != nil {
			return fmt.Errorf("data: insert embeddings: %w", err)
		}
		return nil
	}
	for i := range recs {
		r := &recs[i]
		if len(r.Embedding) == 0 {
			continue
		}
		args = append(args, r.ID, r.ProjectID, r.TaskID, r.DeviceID, r.Type, r.Time.UnixMilli(), len(r.Embedding), encodeVector(r.Embedding))
		if n++; n*cols >= 4000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Embedding returns a record's stored embedding, or nil when it has none.
func (s *Service) Embedding(ctx context.Context, recordID string) ([]float32, error) {
	var dim int
	var enc string
	err := s.db.QueryRow(ctx, "SELECT dim, vector FROM record_embeddings WHERE record_id = ?", recordID).Scan(&dim, &enc)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, fmt.Errorf("data: read embedding: %w", err)
	}
	return decodeVector(enc, dim)
}

// VectorSource yields every stored embedding, for rebuilding the vector
// index (vectors.Options.Source), in pages of 1000 by record id.
func (s *Service) VectorSource() vectors.Source {
	return func(ctx context.Context, yield func(vectors.Item) error) error {
		after := ""
		for {
			rows, err := s.db.Query(ctx, "SELECT record_id, project_id, task_id, device_id, type, time_ms, dim, vector FROM record_embeddings"+
				" WHERE record_id > ? ORDER BY record_id LIMIT 1000", after)
			if err != nil {
				return fmt.Errorf("data: read embeddings: %w", err)
			}
			var page []vectors.Item
			read := 0
			for rows.Next() {
				var it vectors.Item
				var ms int64
				var dim int
				var enc string
				if err := rows.Scan(&it.ID, &it.ProjectID, &it.TaskID, &it.DeviceID, &it.Type, &ms, &dim, &enc); err != nil {
					rows.Close()
					return fmt.Errorf("data: read embeddings: %w", err)
				}
				read++
				after = it.ID
				it.Time = time.UnixMilli(ms).UTC()
				if it.Vector, err = decodeVector(enc, dim); err != nil {
					s.log.Warn("stored embedding unreadable", "record", it.ID, "err", err)
					continue
				}
				page = append(page, it)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("data: read embeddings: %w", err)
			}
			for _, it := range page {
				if err := yield(it); err != nil {
					return err
				}
			}
			if read < 1000 {
				return nil
			}
		}
	}
}
