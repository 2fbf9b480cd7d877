package data

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	exslog "golang.org/x/exp/slog"

	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// UploadPath is where Handler expects to be mounted.
const UploadPath = "/files/"

// Upload states.
const (
	UploadUploading = "uploading"
	UploadCompleted = "completed"
	UploadExpired   = "expired"
)

// Upload is a tus upload. Once Completed, BlobKey names the object in the
// blob store (uploads/<project>/<id>/<name>), which tasks read as a source;
// SHA256, its content's hash, is stored with the completion when the
// upload was written through this process, else shortly after (empty until
// then; see RunDigests).
type Upload struct {
	ID, ProjectID, Name, ContentType string
	Size                             int64
	BlobKey, SHA256                  string
	State                            string
	CreatedAt, ExpiresAt             time.Time
}

// errChecksumMismatch is tus's 460: the chunk was dropped, resend it.
var errChecksumMismatch = tusd.NewError("ERR_CHECKSUM_MISMATCH", "checksum mismatch: the chunk was not stored; send it again", 460)

// uploads is the tus side of the service: tusd over a staging filestore,
// with the checksum and expiration extensions added around it.
type uploads struct {
	s      *Service
	fs     filestore.FileStore
	locker *memorylocker.MemoryLocker
	tus    http.Handler

	// hashes are the running SHA-256 of the uploads in progress that
	// this process has written from their first byte (see WriteChunk).
	hashMu sync.Mutex
	hashes map[string]runningHash
}

// runningHash is the SHA-256 of an upload's first offset bytes.
type runningHash struct {
	h      hash.Hash
	offset int64
}

// maxRunningHashes bounds the running hashes one process keeps; uploads
// begun beyond it are hashed after their last PATCH (RunDigests).
const maxRunningHashes = 4096

// takeHash removes and returns id's running hash if it covers exactly the
// first offset bytes; at offset 0 it starts one. It returns nil when the
// bytes before offset were not hashed here.
func (u *uploads) takeHash(id string, offset int64) hash.Hash {
	u.hashMu.Lock()
	defer u.hashMu.Unlock()
	rh, ok := u.hashes[id]
	delete(u.hashes, id)
	switch {
	case ok && rh.offset == offset:
		return rh.h
	case offset == 0 && len(u.hashes) < maxRunningHashes:
		return sha256.New()
	}
	return nil
}

// putHash keeps id's running hash, now covering offset bytes.
func (u *uploads) putHash(id string, h hash.Hash, offset int64) {
	u.hashMu.Lock()
	u.hashes[id] = runningHash{h: h, offset: offset}
	u.hashMu.Unlock()
}

// uploadSHA256 returns and forgets id's SHA-256 when its running hash
// covers exactly size bytes, else "".
func (u *uploads) uploadSHA256(id string, size int64) string {
	u.hashMu.Lock()
	rh, ok := u.hashes[id]
	delete(u.hashes, id)
	u.hashMu.Unlock()
	if !ok || rh.offset != size {
		return ""
	}
	return hex.EncodeToString(rh.h.Sum(nil))
}

func (s *Service) newUploads() (*uploads, error) {
	if err := os.MkdirAll(s.o.StagingDir, 0o750); err != nil {
		return nil, fmt.Errorf("data: staging dir: %w", err)
	}
	u := &uploads{s: s, fs: filestore.New(s.o.StagingDir), locker: memorylocker.New(), hashes: map[string]runningHash{}}
	u.fs.DirModePerm, u.fs.FileModePerm = 0o750, 0o640
	composer := tusd.NewStoreComposer()
	st := checksumStore{fs: u.fs, u: u}
	composer.UseCore(st)
	composer.UseTerminater(st)
	u.locker.UseIn(composer)
	base := UploadPath
	if s.o.PublicURL != "" {
		base = s.o.PublicURL + UploadPath // absolute Location headers behind proxies
	}
	h, err := tusd.NewHandler(tusd.Config{
		StoreComposer:             composer,
		BasePath:                  base,
		MaxSize:                   s.o.MaxUploadSize,
		DisableDownload:           true, // objects are read through signed URLs
		DisableConcatenation:      true,
		RespectForwardedHeaders:   true,
		Logger:                    exslog.New(exslog.NewTextHandler(io.Discard, nil)), // we log outcomes ourselves
		PreUploadCreateCallback:   u.created,
		PreFinishResponseCallback: u.finished,
		PreUploadTerminateCallback: func(hook tusd.HookEvent) (tusd.HTTPResponse, error) {
			u.markGone(hook.Context, hook.Upload.ID, "terminated")
			return tusd.HTTPResponse{}, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("data: tus handler: %w", err)
	}
	u.tus = http.StripPrefix(UploadPath, h)
	return u, nil
}

type grantKey struct{}
type checksumKey struct{}

// checksum is an Upload-Checksum header: the algorithm and the digest.
type checksum struct {
	alg string
	sum []byte
}

// Handler returns the tus 1.0 endpoint to mount at UploadPath. Requests
// carry an upload token (Upload-Token header, or Authorization: Bearer);
// without a valid one they get 401, and uploads larger than the token
// allows get 413.
func (s *Service) Handler() http.Handler {
	if s.up == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "uploads are not configured", http.StatusServiceUnavailable)
		})
	}
	return s.up
}

func (u *uploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := u.s
	rest, ok := strings.CutPrefix(r.URL.Path, UploadPath)
	if !ok && r.URL.Path+"/" != UploadPath {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodOptions {
		u.tus.ServeHTTP(&extWriter{ResponseWriter: w}, r)
		return
	}
	g, err := s.VerifyUploadToken(uploadToken(r))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tianshu uploads"`)
		tusError(w, http.StatusUnauthorized, "a valid upload token is required (Upload-Token header or Authorization: Bearer); ask CreateUploadToken for one")
		return
	}
	ctx := context.WithValue(r.Context(), grantKey{}, g)
	method := r.Method
	if o := r.Header.Get("X-HTTP-Method-Override"); method == http.MethodPost && o != "" {
		method = o
	}
	if sum := r.Header.Get("Upload-Checksum"); sum != "" {
		c, err := parseChecksum(sum)
		if err != nil {
			tusError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx = context.WithValue(ctx, checksumKey{}, c)
	}
	id := strings.Trim(rest, "/")
	if id == "" {
		if method == http.MethodPost {
			if n, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64); err == nil && n > g.MaxSize {
				tusError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Upload-Length %d is larger than the token allows (%d)", n, g.MaxSize))
				return
			} else if err == nil {
				// The declared size counts against the storage quota from
				// creation: an upload in progress reserves it.
				if err := s.admitStorage(ctx, g.ProjectID, n); err != nil {
					if e, ok := api.AsError(err); ok {
						tusError(w, http.StatusRequestEntityTooLarge, e.Message)
						return
					}
					s.log.Error("storage quota not checked", "project", g.ProjectID, "err", err)
					tusError(w, http.StatusInternalServerError, "internal error")
					return
				}
			}
		}
		u.tus.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	up, err := s.upload(ctx, id)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && up.ProjectID != g.ProjectID) || strings.Contains(id, "/") {
		tusError(w, http.StatusNotFound, "upload not found")
		return
	} else if err != nil {
		s.log.Error("upload lookup failed", "upload", id, "err", err)
		tusError(w, http.StatusInternalServerError, "internal error")
		return
	}
	switch {
	case up.State == UploadCompleted:
		u.serveCompleted(w, r.WithContext(ctx), method, up)
		return
	case up.State == UploadExpired || !s.o.Now().Before(up.ExpiresAt):
		tusError(w, http.StatusGone, "upload expired")
		return
	}
	w.Header().Set("Upload-Expires", up.ExpiresAt.UTC().Format(http.TimeFormat))
	u.tus.ServeHTTP(w, r.WithContext(ctx))
}

// serveCompleted answers requests on an upload that has left the staging
// area: HEAD and a repeated final PATCH report it complete (a client that
// lost the last response then finishes cleanly); DELETE removes the object.
func (u *uploads) serveCompleted(w http.ResponseWriter, r *http.Request, method string, up Upload) {
	h := w.Header()
	h.Set("Tus-Resumable", "1.0.0")
	size := strconv.FormatInt(up.Size, 10)
	switch method {
	case http.MethodHead:
		h.Set("Upload-Offset", size)
		h.Set("Upload-Length", size)
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		if r.Header.Get("Upload-Offset") != size {
			tusError(w, http.StatusConflict, "mismatched offset: the upload is complete")
			return
		}
		h.Set("Upload-Offset", size)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if err := u.s.DeleteUpload(r.Context(), up.ID); err != nil {
			u.s.log.Error("upload delete failed", "upload", up.ID, "err", err)
			tusError(w, http.StatusInternalServerError, "internal error")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "HEAD, PATCH, DELETE")
		tusError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func uploadToken(r *http.Request) string {
	if t := r.Header.Get("Upload-Token"); t != "" {
		return t
	}
	if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(a)
	}
	return ""
}

func tusError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// extWriter adds the extensions this package implements around tusd to its
// OPTIONS answer.
type extWriter struct {
	http.ResponseWriter
	wrote bool
}

func (e *extWriter) WriteHeader(code int) {
	if !e.wrote {
		e.wrote = true
		h := e.Header()
		if x := h.Get("Tus-Extension"); x != "" {
			h.Set("Tus-Extension", x+",checksum,expiration")
			h.Set("Tus-Checksum-Algorithm", "sha1,sha256,md5")
		}
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *extWriter) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return e.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (which tusd uses) reach the
// connection.
func (e *extWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// created runs before tusd creates an upload: it names it, records it
// against the token's project and announces its expiry.
func (u *uploads) created(hook tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	s := u.s
	g, ok := hook.Context.Value(grantKey{}).(UploadGrant)
	if !ok {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusd.NewError("ERR_UNAUTHORIZED", "upload token required", http.StatusUnauthorized)
	}
	now := s.o.Now()
	up := Upload{
		ID: "upl-" + randomID(), ProjectID: g.ProjectID, Size: hook.Upload.Size, State: UploadUploading,
		Name:        fileName(firstOf(hook.Upload.MetaData, "filename", "name")),
		ContentType: firstOf(hook.Upload.MetaData, "filetype", "contentType", "content-type"),
		CreatedAt:   now, ExpiresAt: now.Add(s.o.UploadTTL),
	}
	if up.ContentType == "" || blob.ValidateContentType(up.ContentType) != nil {
		up.ContentType = blob.DefaultContentType
	}
	_, err := s.db.Exec(hook.Context, `INSERT INTO uploads (id, project_id, name, size, content_type, blob_key, sha256, state, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, '', '', ?, ?, ?)`, up.ID, up.ProjectID, up.Name, up.Size, up.ContentType, up.State, now.UnixMilli(), up.ExpiresAt.UnixMilli())
	if err != nil {
		s.log.Error("upload create failed", "err", err)
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, err
	}
	s.m.uploads.WithLabelValues("created").Inc()
	s.log.Info("upload created", "upload", up.ID, "project", up.ProjectID, "size", up.Size, "name", up.Name)
	resp := tusd.HTTPResponse{Header: tusd.HTTPHeader{"Upload-Expires": up.ExpiresAt.UTC().Format(http.TimeFormat)}}
	return resp, tusd.FileInfoChanges{ID: up.ID}, nil
}

// finished runs when the last byte is staged, before the client hears so:
// the upload moves into the blob store, so a 204 on the last PATCH means
// the object is there.
func (u *uploads) finished(hook tusd.HookEvent) (tusd.HTTPResponse, error) {
	// The move must not stop if the client hangs up after its last byte.
	ctx := context.WithoutCancel(hook.Context)
	if err := u.complete(ctx, hook.Upload); err != nil {
		u.s.m.uploads.WithLabelValues("failed").Inc()
		u.s.log.Error("upload completion failed", "upload", hook.Upload.ID, "err", err)
		return tusd.HTTPResponse{}, err
	}
	return tusd.HTTPResponse{}, nil
}

// complete moves a fully staged upload into the blob store, hashing it on
// the way, marks it completed and removes the staged files.
func (u *uploads) complete(ctx context.Context, info tusd.FileInfo) error {
	s := u.s
	up, err := s.upload(ctx, info.ID)
	if err != nil {
		return fmt.Errorf("upload %s: %w", info.ID, err)
	}
	if up.State != UploadUploading {
		return fmt.Errorf("upload %s is %s", info.ID, up.State)
	}
	key := "uploads/" + up.ProjectID + "/" + up.ID + "/" + up.Name
	// Taken before the move: an upload that fails to complete is hashed
	// after all by RunDigests once a later attempt completes it.
	sum := u.uploadSHA256(info.ID, info.Size)
	// Adopt moves the staged file into the file backend (no copy, and no
	// read: the upload id is the ETag of an object that never changes) and
	// streams it to other backends. The SHA-256 was computed as the bytes
	// were written, unless the upload was resumed in another process (then
	// RunDigests computes it).
	if _, err := blob.Adopt(ctx, s.blobs, key, info.Storage[filestore.StorageKeyPath], up.ContentType, up.ID); err != nil {
		return fmt.Errorf("move upload %s into the blob store: %w", up.ID, err)
	}
	res, err := s.db.Exec(ctx, "UPDATE uploads SET state = ?, blob_key = ?, size = ?, sha256 = ? WHERE id = ? AND state = ?",
		UploadCompleted, key, info.Size, sum, up.ID, UploadUploading)
	if err != nil {
		return fmt.Errorf("mark upload %s completed: %w", up.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Expired or deleted meanwhile: the object has no owner.
		_ = s.blobs.Delete(ctx, key)
		return fmt.Errorf("upload %s expired before it completed", up.ID)
	}
	u.removeStaged(info.ID)
	if sum == "" {
		s.queueDigest(up.ID)
	}
	s.m.uploads.WithLabelValues("completed").Inc()
	s.m.uploadBytes.Add(float64(info.Size))
	s.log.InfoContext(ctx, "upload completed", "upload", up.ID, "project", up.ProjectID, "size", info.Size, "key", key)
	return nil
}

// removeStaged deletes an upload's staged files, if any, and its running
// hash.
func (u *uploads) removeStaged(id string) {
	u.hashMu.Lock()
	delete(u.hashes, id)
	u.hashMu.Unlock()
	for _, p := range []string{filepath.Join(u.fs.Path, id), filepath.Join(u.fs.Path, id+".info")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			u.s.log.Warn("staged upload file not removed", "path", p, "err", err)
		}
	}
}

// markGone forgets a terminated upload.
func (u *uploads) markGone(ctx context.Context, id, event string) {
	u.hashMu.Lock()
	delete(u.hashes, id)
	u.hashMu.Unlock()
	if _, err := u.s.db.Exec(ctx, "DELETE FROM uploads WHERE id = ? AND state = ?", id, UploadUploading); err != nil {
		u.s.log.WarnContext(ctx, "upload row not deleted", "upload", id, "err", err)
	}
	u.s.m.uploads.WithLabelValues(event).Inc()
	u.s.log.InfoContext(ctx, "upload terminated", "upload", id)
}

// Upload returns an upload by id; a Completed one's BlobKey can be read
// from the blob store (tasks use it as a source). Unknown ids get an
// api.NotFound error.
func (s *Service) Upload(ctx context.Context, id string) (Upload, error) {
	up, err := s.upload(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Upload{}, api.NotFound("UploadId", id)
	}
	return up, err
}

const uploadColumns = "id, project_id, name, size, content_type, blob_key, sha256, state, created_at, expires_at"

func (s *Service) upload(ctx context.Context, id string) (Upload, error) {
	return scanUpload(s.db.QueryRow(ctx, "SELECT "+uploadColumns+" FROM uploads WHERE id = ?", id))
}

func scanUpload(row interface{ Scan(...any) error }) (Upload, error) {
	var up Upload
	var c, e int64
	if err := row.Scan(&up.ID, &up.ProjectID, &up.Name, &up.Size, &up.ContentType, &up.BlobKey, &up.SHA256, &up.State, &c, &e); err != nil {
		return up, err
	}
	up.CreatedAt, up.ExpiresAt = time.UnixMilli(c).UTC(), time.UnixMilli(e).UTC()
	return up, nil
}

// Uploads lists the uploads of projects, newest first, and how many
// there are.
func (s *Service) Uploads(ctx context.Context, projects store.Projects, uploadIDs []string, offset, limit int) ([]Upload, int, error) {
	var w store.Where
	cond, args := w.InProjects("project_id", projects).In("id", uploadIDs).SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM uploads"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("data: count uploads: %w", err)
	}
	rows, err := s.db.Query(ctx, "SELECT "+uploadColumns+" FROM uploads"+cond+" ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("data: list uploads: %w", err)
	}
	defer rows.Close()
	var out []Upload
	for rows.Next() {
		up, err := scanUpload(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, up)
	}
	return out, total, rows.Err()
}

// DeleteUpload deletes an upload: its object when completed, its staged
// bytes otherwise, and its row.
func (s *Service) DeleteUpload(ctx context.Context, id string) error {
	up, err := s.Upload(ctx, id)
	if err != nil {
		return err
	}
	if up.BlobKey != "" {
		if err := s.blobs.Delete(ctx, up.BlobKey); err != nil {
			return fmt.Errorf("data: delete upload %s: %w", id, err)
		}
	}
	if s.up != nil {
		s.up.removeStaged(id)
	}
	if _, err := s.db.Exec(ctx, "DELETE FROM uploads WHERE id = ?", id); err != nil {
		return fmt.Errorf("data: delete upload %s: %w", id, err)
	}
	s.recountStorage(up.ProjectID)
	s.log.InfoContext(ctx, "upload deleted", "upload", id)
	return nil
}

// expireUploads marks incomplete uploads past their deadline expired and
// sweeps the local staging area: staged files of uploads that are no longer
// in progress are deleted, and fully staged ones whose completion was cut
// short (a crash between the last byte and the move) are completed.
func (s *Service) expireUploads(ctx context.Context) error {
	now := s.o.Now().UnixMilli()
	res, err := s.db.Exec(ctx, "UPDATE uploads SET state = ? WHERE state = ? AND expires_at <= ?", UploadExpired, UploadUploading, now)
	if err != nil {
		return fmt.Errorf("data: expire uploads: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.m.uploads.WithLabelValues("expired").Add(float64(n))
		s.log.InfoContext(ctx, "uploads expired", "count", n)
	}
	if s.up == nil {
		return nil
	}
	return errors.Join(s.up.sweep(ctx), s.queueMissingDigests(ctx))
}

func (u *uploads) sweep(ctx context.Context) error {
	names, err := filepath.Glob(filepath.Join(u.fs.Path, "*.info"))
	if err != nil {
		return err
	}
	for _, name := range names {
		id := strings.TrimSuffix(filepath.Base(name), ".info")
		lock, err := u.locker.NewLock(id)
		if err != nil {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		err = lock.Lock(lctx, func() {})
		cancel()
		if err != nil {
			continue // in use: a request is writing it
		}
		u.sweepOne(ctx, id)
		_ = lock.Unlock()
	}
	return nil
}

func (u *uploads) sweepOne(ctx context.Context, id string) {
	up, err := u.s.upload(ctx, id)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && up.State != UploadUploading):
		u.removeStaged(id)
	case err != nil:
		return
	default:
		staged, err := u.fs.GetUpload(ctx, id)
		if err != nil {
			return
		}
		info, err := staged.GetInfo(ctx)
		if err == nil && !info.SizeIsDeferred && info.Offset == info.Size {
			if err := u.complete(ctx, info); err != nil {
				u.s.log.WarnContext(ctx, "staged upload not completed", "upload", id, "err", err)
			}
		}
	}
}

// checksumStore is tusd's filestore with the checksum extension: when a
// request carries Upload-Checksum, a chunk whose digest differs is cut off
// again and answered with 460, as if it had never arrived.
// It also keeps the running SHA-256 of each upload (see uploads.hashes).
type checksumStore struct {
	fs filestore.FileStore
	u  *uploads
}

func (c checksumStore) NewUpload(ctx context.Context, info tusd.FileInfo) (tusd.Upload, error) {
	up, err := c.fs.NewUpload(ctx, info)
	if err != nil {
		return nil, err
	}
	if info, err = up.GetInfo(ctx); err != nil {
		return nil, err
	}
	return checksumUpload{up, c.u, info.ID}, nil
}

func (c checksumStore) GetUpload(ctx context.Context, id string) (tusd.Upload, error) {
	up, err := c.fs.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return checksumUpload{up, c.u, id}, nil
}

func (c checksumStore) AsTerminatableUpload(up tusd.Upload) tusd.TerminatableUpload {
	return c.fs.AsTerminatableUpload(up.(checksumUpload).Upload)
}

type checksumUpload struct {
	tusd.Upload
	u  *uploads
	id string
}

// WriteChunk stores a PATCH's bytes, adding them to the upload's running
// SHA-256. When the request carries Upload-Checksum, a chunk whose digest
// differs is cut off again and answered with 460, as if it had never
// arrived.
func (c checksumUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	// tusd holds the upload's lock: no other request writes it meanwhile.
	var hashed int64
	body := bodyReader{Reader: src, h: c.u.takeHash(c.id, offset), hashed: &hashed}
	// keep puts the running hash back if it covers exactly what is in
	// the file after the chunk's n bytes (an interrupted body keeps what
	// arrived).
	keep := func(n int64) {
		if body.h != nil && hashed == n {
			c.u.putHash(c.id, body.h, offset+n)
		}
	}
	want, ok := ctx.Value(checksumKey{}).(checksum)
	if !ok {
		n, err := c.Upload.WriteChunk(ctx, offset, body)
		keep(n)
		return n, err
	}
	h := newHash(want.alg)
	body.Reader = io.TeeReader(src, h)
	n, err := c.Upload.WriteChunk(ctx, offset, body)
	if err == nil && hashEqual(h.Sum(nil), want.sum) {
		keep(n)
		return n, nil
	}
	// The chunk is cut off below: the running hash, which has it, is
	// dropped (the upload is hashed after its last PATCH).
	// Cut the chunk off again: tusd derives the offset from the file size.
	info, ierr := c.GetInfo(ctx)
	if ierr != nil {
		return n, errors.Join(err, ierr)
	}
	if terr := os.Truncate(info.Storage[filestore.StorageKeyPath], offset); terr != nil {
		return n, errors.Join(err, terr)
	}
	if err != nil {
		return 0, err
	}
	return 0, errChecksumMismatch
}

// firstOf returns the first non-empty metadata value of the keys.
func firstOf(m tusd.MetaData, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

// fileName makes a client's file name safe as one blob key segment.
func fileName(name string) string {
	name = strings.TrimSpace(name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '_'
		}
		return r
	}, name)
	for len(name) > 200 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == ".." || !validSegment(name) {
		return "file"
	}
	return name
}

func randomID() string { return randomChars(16) }

func randomChars(n int) string { return ids.Random(n, recordIDChars) }

// parseChecksum parses an Upload-Checksum header: "<algorithm> <base64>".
func parseChecksum(v string) (checksum, error) {
	alg, b64, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return checksum{}, fmt.Errorf("Upload-Checksum: want \"<algorithm> <base64 digest>\"")
	}
	alg = strings.ToLower(alg)
	if newHash(alg) == nil {
		return checksum{}, fmt.Errorf("Upload-Checksum: unsupported algorithm %q; supported: sha1, sha256, md5", alg)
	}
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return checksum{}, fmt.Errorf("Upload-Checksum: digest is not base64")
	}
	return checksum{alg: alg, sum: sum}, nil
}

func newHash(alg string) hash.Hash {
	switch alg {
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	case "md5":
		return md5.New()
	}
	return nil
}

func hashEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// CompletedUpload returns the blob key of a completed upload of the
// project, for actions that take an upload id as input (algorithm
// packages); its errors name field. Another project's upload is reported
// as not found.
func (s *Service) CompletedUpload(ctx context.Context, projectID, uploadID, field string) (string, error) {
	u, err := s.Upload(ctx, uploadID)
	if err != nil {
		return "", err
	}
	if u.ProjectID != projectID {
		return "", api.NotFound(field, uploadID)
	}
	if u.BlobKey == "" {
		return "", api.InvalidValue(field, "upload %s is %s, not completed", uploadID, u.State)
	}
	return u.BlobKey, nil
}
