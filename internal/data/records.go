package data

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// Record limits, checked before a record is queued so that one bad record
// cannot fail the batch it would have joined.
const (
	MaxRecordData    = 1 << 20 // bytes of a record's JSON document
	MaxRecordObjects = 64      // object keys per record
	maxIDLen         = 64
	maxDeviceLen     = 128
	maxTypeLen       = 64
)

// ErrInvalidRecord wraps every reason a record is refused before writing.
var ErrInvalidRecord = errors.New("data: invalid record")

// Record is one structured result of a task (DESIGN §2): a JSON document
// and the keys of the objects it refers to, indexed by task, device, type
// and time.
type Record struct {
	// ID is "rec-…". A writer fills it in when empty; a caller that sets it
	// (say, from the frame's id) makes rewrites of the same record no-ops,
	// so redelivered messages do not duplicate records.
	ID        string
	ProjectID string // "default" when empty
	TaskID    string
	DeviceID  string
	Type      string
	// Time is when the result was observed (the frame's time), to the
	// millisecond; zero means now.
	Time time.Time
	// Data is a JSON object; empty means {}. Its top-level fields can be
	// filtered on (Attribute).
	Data json.RawMessage
	// Objects are blob keys of crops and frames (see PutObject). Those under
	// the record's own task prefix are deleted with the record.
	Objects []string
	// Bytes is what the record holds against its project's storage quota:
	// its document and the objects stored with it. 0: the document's
	// length.
	Bytes int64
	// CreatedAt is when the record was written; set by the store.
	CreatedAt time.Time
	// Embedding, when set, is stored beside the record (not in Data) and
	// indexed for similarity search (SearchFaces); vectors.MaxDim values
	// at most, finite and not all zero. Records read back leave it empty:
	// Service.Embedding returns it.
	Embedding []float32
}

// recordIDChars is Crockford's base32, as ids uses.
const recordIDChars = "0123456789abcdefghjkmnpqrstvwxyz"

// NewRecordID returns a fresh record id: "rec-", the time in milliseconds
// in 9 base32 characters, then 10 random ones (50 bits per millisecond).
// Ids of later records sort later, so inserts append to the primary key
// index instead of splitting pages all over it, which more than doubles
// the write rate of a large table on SQLite.
func NewRecordID() string {
	var b [23]byte
	copy(b[:], "rec-")
	ms := uint64(time.Now().UnixMilli())
	for i := 12; i >= 4; i-- {
		b[i] = recordIDChars[ms&31]
		ms >>= 5
	}
	copy(b[13:], ids.Random(10, recordIDChars))
	return string(b[:])
}

// prepare fills defaults in and checks the limits.
func (s *Service) prepare(r *Record) error {
	if r.ID == "" {
		r.ID = NewRecordID()
	}
	if r.ProjectID == "" {
		r.ProjectID = "default"
	}
	if r.Time.IsZero() {
		r.Time = s.o.Now()
	}
	if len(bytes.TrimSpace(r.Data)) == 0 {
		r.Data = json.RawMessage("{}")
	}
	if r.Bytes <= 0 {
		r.Bytes = int64(len(r.Data))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"ID", r.ID, maxIDLen}, {"ProjectID", r.ProjectID, maxIDLen}, {"TaskID", r.TaskID, maxIDLen},
		{"DeviceID", r.DeviceID, maxDeviceLen}, {"Type", r.Type, maxTypeLen}} {
		if len(f.v) > f.max || !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s longer than %d bytes or not UTF-8", ErrInvalidRecord, f.name, f.max)
		}
	}
	if len(r.Data) > MaxRecordData {
		return fmt.Errorf("%w: data is %d bytes; at most %d", ErrInvalidRecord, len(r.Data), MaxRecordData)
	}
	if d := bytes.TrimSpace(r.Data); d[0] != '{' || !json.Valid(d) {
		return fmt.Errorf("%w: data is not a JSON object", ErrInvalidRecord)
	}
	if len(r.Objects) > MaxRecordObjects {
		return fmt.Errorf("%w: %d objects; at most %d", ErrInvalidRecord, len(r.Objects), MaxRecordObjects)
	}
	if len(r.Embedding) > 0 {
		if err := vectors.CheckVector(r.Embedding, "Embedding"); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidRecord, err)
		}
	}
	return nil
}

// rowsPerStatement bounds one INSERT's rows: 10 parameters a row stays far
// below every engine's parameter limit (SQLite's 32766).
const rowsPerStatement = 500

const recordColumns = "id, project_id, task_id, device_id, type, time_ms, data, objects, bytes, created_at"

// Insert writes records in one transaction and returns once it has
// committed. Records whose id already exists are skipped, so retrying a
// batch is safe. Most callers use a Writer, which batches for them.
func (s *Service) Insert(ctx context.Context, recs []Record) error {
	for i := range recs {
		if err := s.prepare(&recs[i]); err != nil {
			return err
		}
	}
	return s.insert(ctx, recs)
}

// insert writes prepared records in one transaction.
func (s *Service) insert(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	now := s.o.Now().UnixMilli()
	start := time.Now()
	if err := s.indexEmbeddings(ctx, recs); err != nil {
		s.m.writeErrors.Add(float64(len(recs)))
		return err
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		for lo := 0; lo < len(recs); lo += rowsPerStatement {
			chunk := recs[lo:min(lo+rowsPerStatement, len(recs))]
			args := make([]any, 0, len(chunk)*10)
			for i := range chunk {
				r := &chunk[i]
				objs := "[]"
				if len(r.Objects) > 0 {
					b, _ := json.Marshal(r.Objects)
					objs = string(b)
				}
				args = append(args, r.ID, r.ProjectID, r.TaskID, r.DeviceID, r.Type, r.Time.UnixMilli(), string(r.Data), objs, r.Bytes, now)
			}
			var err error
			if st := s.fullInsert(ctx); st != nil && len(chunk) == rowsPerStatement {
				_, err = tx.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
			} else {
				_, err = tx.Exec(ctx, s.insertSQL(len(chunk)), args...)
			}
			if err != nil {
				return fmt.Errorf("data: insert %d records: %w", len(chunk), err)
			}
		}
		return s.insertEmbeddings(ctx, tx, recs)
	})
	if err != nil {
		s.m.writeErrors.Add(float64(len(recs)))
		return err
	}
	s.m.flushLatency.Observe(time.Since(start).Seconds())
	s.m.batchSize.Observe(float64(len(recs)))
	s.m.written.Add(float64(len(recs)))
	for i := range recs {
		recs[i].CreatedAt = time.UnixMilli(now).UTC()
	}
	return nil
}

// fullInsert returns the statement that inserts a full chunk, prepared
// once: parsing a 500-row INSERT costs a tenth of its execution on SQLite.
// It returns nil when preparing fails (the caller then runs the text).
func (s *Service) fullInsert(ctx context.Context) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.insStmt == nil {
		st, err := s.db.DB.PrepareContext(ctx, s.db.Rebind(s.insertSQL(rowsPerStatement)))
		if err != nil {
			return nil
		}
		s.insStmt = st
	}
	return s.insStmt
}

// insertSQL is a multi-row INSERT that skips rows whose id exists.
func (s *Service) insertSQL(rows int) string {
	var b strings.Builder
	b.Grow(64 + rows*20)
	b.WriteString("INSERT INTO records (" + recordColumns + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
	}
	b.WriteString(s.db.Dialect().OnConflict([]string{"id"}))
	return b.String()
}

// Attribute is a filter on a top-level field of the record's document.
// With Op "=" (or empty) and "!=", Value is compared with the field's
// text: a string's content, a number as written, true or false. With "<",
// "<=", ">" and ">=", Value must be a number and the field matches only
// when it is a JSON number in that range. A record without the field (or
// with null) matches no filter on it, "!=" included.
type Attribute struct {
	Name, Op, Value string
}

// AttributeOps are the comparisons an Attribute may make.
var AttributeOps = []string{"=", "!=", "<", "<=", ">", ">="}

// condition is the SQL condition of a on the JSON column and its argument;
// i numbers the attribute in error messages.
func (a Attribute) condition(d store.Dialect, column string, i int) (string, any, error) {
	if !attrName.MatchString(a.Name) {
		return "", nil, api.InvalidValue(fmt.Sprintf("Attributes[%d].Name", i), "%q: a top-level field name of letters, digits and _", a.Name)
	}
	switch a.Op {
	case "", "=":
		return d.JSONText(column, a.Name) + " = ?", a.Value, nil
	case "!=":
		return d.JSONText(column, a.Name) + " <> ?", a.Value, nil
	case "<", "<=", ">", ">=":
		n, err := strconv.ParseFloat(strings.TrimSpace(a.Value), 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return "", nil, api.InvalidValue(fmt.Sprintf("Attributes[%d].Value", i), "%q is not a number; %s compares numbers", a.Value, a.Op)
		}
		return d.JSONNumber(column, a.Name) + " " + a.Op + " ?", n, nil
	}
	return "", nil, api.InvalidValue(fmt.Sprintf("Attributes[%d].Op", i), "%q is not one of %s", a.Op, strings.Join(AttributeOps, " "))
}

// Query selects records. Empty fields do not filter; every list is an OR
// of its values and the fields are ANDed.
type Query struct {
	ProjectID string
	// Projects, when set, replaces ProjectID: the records of several
	// projects, each narrowed (a union list).
	Projects                  *store.Projects
	IDs                       []string
	TaskIDs, DeviceIDs, Types []string
	// EdgeNodes keeps the records of the devices or tasks placed on these
	// edge nodes (the device center and the task service keep them in
	// the same store).
	EdgeNodes []string
	// Start (inclusive) and End (exclusive) bound the record's Time; zero
	// leaves that side open.
	Start, End time.Time
	Attributes []Attribute
	// Conditions are typed filters on fields of the document, nested ones
	// included (SearchRecords).
	Conditions []Condition
	// Offset and Limit page the results, newest first; Limit 0 means 20.
	Offset, Limit int
}

func (s *Service) where(q Query) (string, []any, error) {
	var w store.Where
	if q.Projects != nil {
		w.InProjects("project_id", *q.Projects)
	} else {
		w.Eq("project_id", q.ProjectID)
	}
	w.In("id", q.IDs).In("task_id", q.TaskIDs).In("device_id", q.DeviceIDs).In("type", q.Types)
	if len(q.EdgeNodes) > 0 {
		var on, devs, tasks store.Where
		c, a := on.In("edge_node", q.EdgeNodes).SQL()
		devs.Add("device_id IN (SELECT id FROM devices"+c+")", a...)
		tasks.Add("task_id IN (SELECT id FROM tasks"+c+")", a...)
		oc, oa := store.Or(&devs, &tasks)
		w.Add(oc, oa...)
	}
	if !q.Start.IsZero() {
		w.Add("time_ms >= ?", q.Start.UnixMilli())
	}
	if !q.End.IsZero() {
		w.Add("time_ms < ?", q.End.UnixMilli())
	}
	for i, a := range q.Attributes {
		cond, arg, err := a.condition(s.db.Dialect(), "data", i)
		if err != nil {
			return "", nil, err
		}
		w.Add(cond, arg)
	}
	for _, c := range q.Conditions {
		cond, args := c.sql(s.db.Dialect(), "data")
		w.Add(cond, args...)
	}
	cond, args := w.SQL()
	return cond, args, nil
}

// reaches reports whether record id is one of those in covers.
func (s *Service) reaches(ctx context.Context, in store.Projects, id string) (bool, error) {
	cond, args, err := s.where(Query{Projects: &in, IDs: []string{id}})
	if err != nil {
		return false, err
	}
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM records"+cond, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("data: record reach: %w", err)
	}
	return n > 0, nil
}

// recordReach is what a role narrowed to sc reaches of projectID's
// records: those of its devices (by id, or by group among the project's
// devices, which the device center keeps in the same store) and of its
// tasks.
func recordReach(projectID string, sc api.Scope) (string, []any) {
	var ids, groups store.Where
	ids.In("device_id", sc.DeviceIDs)
	if len(sc.DeviceGroups) > 0 {
		var in store.Where
		c, a := in.Eq("project_id", projectID).In("device_group", sc.DeviceGroups).SQL()
		groups.Add("device_id IN (SELECT id FROM devices"+c+")", a...)
	}
	var w store.Where
	if c, a := store.Or(&ids, &groups); c != "" {
		w.Add(c, a...)
	}
	return w.In("task_id", sc.TaskIDs).Cond()
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// Records returns the records matching q, newest first (by Time, then id),
// and how many match in all.
func (s *Service) Records(ctx context.Context, q Query) ([]Record, int, error) {
	cond, args, err := s.where(q)
	if err != nil {
		return nil, 0, err
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM records"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("data: count records: %w", err)
	}
	if total == 0 || q.Offset >= total {
		return nil, total, nil
	}
	rows, err := s.db.Query(ctx, "SELECT "+recordColumns+" FROM records"+cond+" ORDER BY time_ms DESC, id DESC LIMIT ? OFFSET ?",
		append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("data: list records: %w", err)
	}
	defer rows.Close()
	out := make([]Record, 0, min(q.Limit, total))
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}

// Record returns one record, or an api.NotFound error.
func (s *Service) Record(ctx context.Context, id string) (Record, error) {
	r, err := scanRecord(s.db.QueryRow(ctx, "SELECT "+recordColumns+" FROM records WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, api.NotFound("RecordId", id)
	}
	return r, err
}

func scanRecord(row interface{ Scan(...any) error }) (Record, error) {
	var r Record
	var t, created int64
	var data, objs string
	if err := row.Scan(&r.ID, &r.ProjectID, &r.TaskID, &r.DeviceID, &r.Type, &t, &data, &objs, &r.Bytes, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return r, err
		}
		return r, fmt.Errorf("data: scan record: %w", err)
	}
	r.Time, r.CreatedAt = time.UnixMilli(t).UTC(), time.UnixMilli(created).UTC()
	r.Data = json.RawMessage(data)
	if objs != "" && objs != "[]" {
		if err := json.Unmarshal([]byte(objs), &r.Objects); err != nil {
			return r, fmt.Errorf("data: record %s: objects: %w", r.ID, err)
		}
	}
	return r, nil
}

// deleteBatchSize bounds one deletion round: the rows selected, the
// objects deleted and the ids in one DELETE.
const deleteBatchSize = 500

// DeleteRecords deletes the records of recordIDs that in covers, with
// their objects, and returns how many it deleted: a caller's ListIn, so
// that a role narrowed to devices or tasks deletes their records only.
func (s *Service) DeleteRecords(ctx context.Context, in store.Projects, recordIDs []string) (int, error) {
	total := 0
	for lo := 0; lo < len(recordIDs); lo += deleteBatchSize {
		cond, args, err := s.where(Query{Projects: &in, IDs: recordIDs[lo:min(lo+deleteBatchSize, len(recordIDs))]})
		if err != nil {
			return total, err
		}
		_, n, err := s.deleteBatch(ctx, strings.TrimPrefix(cond, " WHERE "), args, "api")
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// DeleteTaskRecords deletes a task's records in what in covers whose Time
// is in [start, end) (zero bounds are open), in bounded batches, and
// returns how many.
func (s *Service) DeleteTaskRecords(ctx context.Context, in store.Projects, taskID string, start, end time.Time) (int, error) {
	cond, args, err := s.where(Query{Projects: &in, TaskIDs: []string{taskID}, Start: start, End: end})
	if err != nil {
		return 0, err
	}
	return s.deleteAll(ctx, strings.TrimPrefix(cond, " WHERE "), args, "api")
}

// deleteAll runs deleteBatch until nothing matches.
func (s *Service) deleteAll(ctx context.Context, where string, args []any, reason string) (int, error) {
	total := 0
	for {
		selected, n, err := s.deleteBatch(ctx, where, args, reason)
		total += n
		if err != nil || selected < deleteBatchSize {
			return total, err
		}
	}
}

// deleteBatch deletes up to deleteBatchSize of the oldest records matching
// where, and returns how many it selected and how many it deleted (fewer
// when another replica deleted some meanwhile). Objects go first: a crash in
// between leaves records whose objects answer 404, which the next round
// deletes, never objects nobody refers to.
func (s *Service) deleteBatch(ctx context.Context, where string, args []any, reason string) (selected, deleted int, err error) {
	rows, err := s.db.Query(ctx, "SELECT id, project_id, task_id, objects FROM records WHERE "+where+
		" ORDER BY time_ms, id LIMIT ?", append(append([]any(nil), args...), deleteBatchSize)...)
	if err != nil {
		return 0, 0, fmt.Errorf("data: select records to delete: %w", err)
	}
	var recIDs []any
	var keys []string
	for rows.Next() {
		var id, project, task, objs string
		if err := rows.Scan(&id, &project, &task, &objs); err != nil {
			rows.Close()
			return 0, 0, err
		}
		recIDs = append(recIDs, id)
		if objs == "" || objs == "[]" {
			continue
		}
		var ks []string
		if json.Unmarshal([]byte(objs), &ks) == nil {
			prefix := objectPrefix(project, task)
			for _, k := range ks {
				if strings.HasPrefix(k, prefix) { // only what the task owns, never uploads
					keys = append(keys, k)
				}
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if len(recIDs) == 0 {
		return 0, 0, nil
	}
	for _, k := range keys {
		if err := s.blobs.Delete(ctx, k); err != nil {
			return 0, 0, fmt.Errorf("data: delete object %s: %w", k, err)
		}
	}
	var n int64
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, "DELETE FROM records WHERE id IN ("+placeholders(len(recIDs))+")", recIDs...)
		if err != nil {
			return fmt.Errorf("data: delete records: %w", err)
		}
		n, _ = res.RowsAffected()
		if _, err := tx.Exec(ctx, "DELETE FROM record_embeddings WHERE record_id IN ("+placeholders(len(recIDs))+")", recIDs...); err != nil {
			return fmt.Errorf("data: delete embeddings: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	// After the store: a crash in between leaves index entries without
	// records, which SearchFaces drops; a rebuild clears them.
	if s.vectors != nil {
		ids := make([]string, len(recIDs))
		for i, id := range recIDs {
			ids[i] = id.(string)
		}
		if err := s.vectors.Delete(ctx, ids); err != nil {
			s.log.Warn("vector index delete failed; stale entries are dropped at search", "records", len(ids), "err", err)
		}
	}
	s.m.deleted.WithLabelValues(reason).Add(float64(n))
	s.quotaMu.Lock()
	clear(s.storage) // counted again from the store at the next check
	s.quotaMu.Unlock()
	return len(recIDs), int(n), nil
}
