// Package pgvector is the scaled-out vector index: PostgreSQL with the
// pgvector extension (postgres://… or postgresql://…). Every replica of
// the platform shares it; PostgreSQL keeps it durable and replicated, and
// pgvector's HNSW index (inner product on unit vectors, i.e. cosine)
// answers searches. Qdrant and Milvus are later backends behind the same
// interface and conformance suite.
//
// One table per dimension ("<table>_d128"), since a pgvector column and
// its HNSW index have one dimension; a partitions table records each
// project and type's dimension. The URL's own parameter table (default
// tianshu_vectors) names the tables; every other parameter goes to the
// driver.
package pgvector

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"

	"github.com/tianshu-ai/tianshu/internal/vectors"
)

func init() {
	vectors.Register("postgres", open)
	vectors.Register("postgresql", open)
}

// maxIndexedDim is pgvector's limit for an HNSW index on vector columns;
// wider partitions are searched by an exact scan.
const maxIndexedDim = 2000

// efSearchFloor matches the embedded index's default search breadth.
const efSearchFloor = 64

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// Index is the pgvector backend.
type Index struct {
	db        *sql.DB
	table     string
	iterative bool // pgvector ≥ 0.8: filtered HNSW scans continue until k rows pass

	mu     sync.Mutex
	dims   map[[2]string]int // partition → dimension, as stored
	tables map[int]bool      // dimensions whose table exists
	closed bool
}

func open(ctx context.Context, u *url.URL, o vectors.Options) (vectors.Index, error) {
	q := u.Query()
	table := q.Get("table")
	if table == "" {
		table = "tianshu_vectors"
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("pgvector: table=%q: lower-case letters, digits and _, at most 41", table)
	}
	q.Del("table")
	du := *u
	du.Scheme = "postgres"
	du.RawQuery = q.Encode()
	db, err := sql.Open("pgx", du.String())
	if err != nil {
		return nil, fmt.Errorf("pgvector: %w", err)
	}
	ix := &Index{db: db, table: table, dims: map[[2]string]int{}, tables: map[int]bool{}}
	if err := ix.setup(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return ix, nil
}

func (ix *Index) setup(ctx context.Context) error {
	if _, err := ix.db.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS vector"); err != nil {
		return fmt.Errorf("pgvector: CREATE EXTENSION vector (is pgvector installed, and may this user create it?): %w", err)
	}
	var version string
	if err := ix.db.QueryRowContext(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'vector'").Scan(&version); err != nil {
		return fmt.Errorf("pgvector: extension version: %w", err)
	}
	ix.iterative = versionAtLeast(version, 0, 8)
	if _, err := ix.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+ix.table+`_partitions (
		project_id text NOT NULL, type text NOT NULL, dim integer NOT NULL, PRIMARY KEY (project_id, type))`); err != nil {
		return fmt.Errorf("pgvector: create partitions table: %w", err)
	}
	rows, err := ix.db.QueryContext(ctx, "SELECT project_id, type, dim FROM "+ix.table+"_partitions")
	if err != nil {
		return fmt.Errorf("pgvector: read partitions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p, t string
		var d int
		if err := rows.Scan(&p, &t, &d); err != nil {
			return fmt.Errorf("pgvector: read partitions: %w", err)
		}
		ix.dims[[2]string{p, t}] = d
		ix.tables[d] = true
	}
	return rows.Err()
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}

func (ix *Index) dimTable(dim int) string { return ix.table + "_d" + strconv.Itoa(dim) }

// ensureTable creates the table of a dimension and its indexes.
func (ix *Index) ensureTable(ctx context.Context, dim int) error {
	ix.mu.Lock()
	ok := ix.tables[dim]
	ix.mu.Unlock()
	if ok {
		return nil
	}
	t := ix.dimTable(dim)
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + t + ` (id text PRIMARY KEY, project_id text NOT NULL, type text NOT NULL,
			device_id text NOT NULL, task_id text NOT NULL, time_ms bigint NOT NULL, embedding vector(` + strconv.Itoa(dim) + `) NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS ` + t + `_partition ON ` + t + ` (project_id, type)`,
	}
	if dim <= maxIndexedDim {
		stmts = append(stmts, `CREATE INDEX IF NOT EXISTS `+t+`_hnsw ON `+t+` USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 64)`)
	}
	// CREATE … IF NOT EXISTS is not safe against itself: two sessions
	// creating the same table at once can fail with "already exists". The
	// creators (writers of this process and of other replicas) take a
	// transaction-scoped advisory lock on the table's name first.
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("create vector table", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, t); err != nil {
		return wrap("create vector table", err)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return wrap("create vector table", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("create vector table", err)
	}
	ix.mu.Lock()
	ix.tables[dim] = true
	ix.mu.Unlock()
	return nil
}

// allDims returns the dimensions of every partition, read from the
// store, since other replicas may have added some.
func (ix *Index) allDims(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]int, error) {
	rows, err := q.QueryContext(ctx, "SELECT DISTINCT dim FROM "+ix.table+"_partitions")
	if err != nil {
		return nil, wrap("read partitions", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var d int
		if err := rows.Scan(&d); err != nil {
			return nil, wrap("read partitions", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// lookupDim is dimOf, asking the store on a miss (another replica may
// have created the partition).
func (ix *Index) lookupDim(ctx context.Context, project, typ string) (int, error) {
	if d := ix.dimOf(project, typ); d != 0 {
		return d, nil
	}
	var d int
	err := ix.db.QueryRowContext(ctx, "SELECT dim FROM "+ix.table+"_partitions WHERE project_id = $1 AND type = $2", project, typ).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("read partition", err)
	}
	ix.mu.Lock()
	ix.dims[[2]string{project, typ}] = d
	ix.mu.Unlock()
	return d, nil
}

func (ix *Index) dimOf(project, typ string) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.dims[[2]string{project, typ}]
}

func (ix *Index) isClosed() bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.closed
}

// wrap marks connection failures as ErrUnavailable (retry later).
func wrap(what string, err error) error {
	var ne net.Error
	if errors.Is(err, driver.ErrBadConn) || errors.As(err, &ne) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: pgvector: %s: %v", vectors.ErrUnavailable, what, err)
	}
	return fmt.Errorf("pgvector: %s: %w", what, err)
}

// literal is pgvector's text form of a unit vector: [x,y,…].
func literal(v []float32) string {
	n := vectors.Normalize(v)
	b := make([]byte, 0, len(n)*10+2)
	b = append(b, '[')
	for i, x := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return string(append(b, ']'))
}

// Upsert implements vectors.Index: one transaction for the batch.
func (ix *Index) Upsert(ctx context.Context, items []vectors.Item) error {
	if ix.isClosed() {
		return vectors.ErrClosed
	}
	if err := vectors.CheckItems(items, ix.dimOf); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	for _, it := range items {
		if err := ix.ensureTable(ctx, len(it.Vector)); err != nil {
			return err
		}
	}
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("begin", err)
	}
	defer tx.Rollback()
	newDims := map[[2]string]int{}
	dims, err := ix.allDims(ctx, tx)
	if err != nil {
		return err
	}
	for _, it := range items {
		key := [2]string{it.ProjectID, it.Type}
		if ix.dimOf(it.ProjectID, it.Type) == 0 && newDims[key] == 0 {
			// Two writers may create a partition at once: the first
			// dimension committed wins and the other is refused here.
			var d int
			if err := tx.QueryRowContext(ctx, `INSERT INTO `+ix.table+`_partitions (project_id, type, dim) VALUES ($1, $2, $3)
				ON CONFLICT (project_id, type) DO UPDATE SET dim = `+ix.table+`_partitions.dim RETURNING dim`,
				it.ProjectID, it.Type, len(it.Vector)).Scan(&d); err != nil {
				return wrap("record partition", err)
			}
			if d != len(it.Vector) {
				return fmt.Errorf("%w: partition %s/%s holds %d dimensions; the vector has %d", vectors.ErrDimension, it.ProjectID, it.Type, d, len(it.Vector))
			}
			newDims[key] = d
			if !slices.Contains(dims, d) {
				dims = append(dims, d)
			}
		}
		// An id is unique across the index: drop it from other tables.
		for _, d := range dims {
			if d == len(it.Vector) {
				continue
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+ix.dimTable(d)+" WHERE id = $1", it.ID); err != nil {
				return wrap("move vector", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+ix.dimTable(len(it.Vector))+` (id, project_id, type, device_id, task_id, time_ms, embedding)
			VALUES ($1, $2, $3, $4, $5, $6, $7::vector)
			ON CONFLICT (id) DO UPDATE SET project_id = EXCLUDED.project_id, type = EXCLUDED.type, device_id = EXCLUDED.device_id,
			task_id = EXCLUDED.task_id, time_ms = EXCLUDED.time_ms, embedding = EXCLUDED.embedding`,
			it.ID, it.ProjectID, it.Type, it.DeviceID, it.TaskID, it.Time.UnixMilli(), literal(it.Vector)); err != nil {
			return wrap("upsert vector", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("commit", err)
	}
	ix.mu.Lock()
	for k, d := range newDims {
		ix.dims[k] = d
	}
	ix.mu.Unlock()
	return nil
}

// Delete implements vectors.Index.
func (ix *Index) Delete(ctx context.Context, ids []string) error {
	if ix.isClosed() {
		return vectors.ErrClosed
	}
	if err := vectors.CheckDelete(ids); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	dims, err := ix.allDims(ctx, ix.db)
	if err != nil {
		return err
	}
	for _, d := range dims {
		if _, err := ix.db.ExecContext(ctx, "DELETE FROM "+ix.dimTable(d)+" WHERE id = ANY($1)", ids); err != nil {
			return wrap("delete vectors", err)
		}
	}
	return nil
}

// Search implements vectors.Index.
func (ix *Index) Search(ctx context.Context, v []float32, k int, f vectors.Filter) ([]vectors.Hit, error) {
	if ix.isClosed() {
		return nil, vectors.ErrClosed
	}
	if err := vectors.CheckSearch(v, k, f); err != nil {
		return nil, err
	}
	dim, err := ix.lookupDim(ctx, f.ProjectID, f.Type)
	if err != nil {
		return nil, err
	}
	if dim == 0 {
		return nil, nil
	}
	if dim != len(v) {
		return nil, fmt.Errorf("%w: the vector has %d dimensions; partition %s/%s holds %d", vectors.ErrDimension, len(v), f.ProjectID, f.Type, dim)
	}
	args := []any{literal(v), f.ProjectID, f.Type}
	where := "project_id = $2 AND type = $3"
	add := func(cond string, arg any) {
		args = append(args, arg)
		where += " AND " + strings.ReplaceAll(cond, "$", "$"+strconv.Itoa(len(args)))
	}
	if len(f.DeviceIDs) > 0 {
		add("device_id = ANY($)", f.DeviceIDs)
	}
	if len(f.TaskIDs) > 0 {
		add("task_id = ANY($)", f.TaskIDs)
	}
	if !f.Start.IsZero() {
		add("time_ms >= $", f.Start.UnixMilli())
	}
	if !f.End.IsZero() {
		add("time_ms < $", f.End.UnixMilli())
	}
	args = append(args, k)
	tx, err := ix.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, wrap("begin", err)
	}
	defer tx.Rollback()
	settings := []string{"SET LOCAL hnsw.ef_search = " + strconv.Itoa(max(efSearchFloor, k))}
	if ix.iterative {
		settings = append(settings, "SET LOCAL hnsw.iterative_scan = relaxed_order")
	}
	for _, s := range settings {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return nil, wrap("search settings", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, device_id, task_id, time_ms, -(embedding <#> $1::vector) FROM `+ix.dimTable(dim)+
		` WHERE `+where+` ORDER BY embedding <#> $1::vector LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, wrap("search", err)
	}
	defer rows.Close()
	var hits []vectors.Hit
	for rows.Next() {
		var h vectors.Hit
		var ms int64
		var sim float64
		if err := rows.Scan(&h.ID, &h.DeviceID, &h.TaskID, &ms, &sim); err != nil {
			return nil, wrap("search", err)
		}
		h.Time, h.Similarity = time.UnixMilli(ms).UTC(), float32(sim)
		if h.Similarity >= f.MinSimilarity {
			hits = append(hits, h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("search", err)
	}
	vectors.SortHits(hits)
	return hits, nil
}

// Stats implements vectors.Index.
func (ix *Index) Stats(ctx context.Context) (vectors.Stats, error) {
	if ix.isClosed() {
		return vectors.Stats{}, vectors.ErrClosed
	}
	var s vectors.Stats
	if err := ix.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+ix.table+"_partitions").Scan(&s.Partitions); err != nil {
		return s, wrap("stats", err)
	}
	dims, err := ix.allDims(ctx, ix.db)
	if err != nil {
		return s, err
	}
	for _, d := range dims {
		var n int
		var size int64
		if err := ix.db.QueryRowContext(ctx, "SELECT COUNT(*), pg_total_relation_size($1::regclass) FROM "+ix.dimTable(d), ix.dimTable(d)).Scan(&n, &size); err != nil {
			return s, wrap("stats", err)
		}
		s.Items += n
		s.DiskBytes += size
	}
	return s, nil
}

// Close implements vectors.Index; the data stays in PostgreSQL.
func (ix *Index) Close() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return nil
	}
	ix.closed = true
	ix.mu.Unlock()
	return ix.db.Close()
}

// Drop deletes every table of the index (tests, and an operator moving
// away from pgvector).
func (ix *Index) Drop(ctx context.Context) error {
	dims, err := ix.allDims(ctx, ix.db)
	if err != nil {
		return err
	}
	for _, d := range dims {
		if _, err := ix.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+ix.dimTable(d)); err != nil {
			return wrap("drop", err)
		}
	}
	_, err = ix.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+ix.table+"_partitions")
	return err
}
