// Package edge joins edge nodes (sites with their own store and bus, next
// to their cameras) to a cloud control plane over one outbound,
// TLS-encrypted, authenticated NATS leaf node connection.
//
// The cloud runs a hub (hub.go): a NATS server of its own in the process
// that accepts only leaf connections, on --edge.leaf-addr, with a
// self-signed certificate whose SHA-256 every join token pins. An edge
// (link.go) exchanges its one-time join token once, over the cloud's HTTP
// API, for a credential it keeps sealed in its data dir; its own NATS
// server (JetStream domain "edge-<node id>") then keeps the leaf
// connection to the hub. Records the edge's tasks store are also put in
// that server's outbox stream, a bounded disk buffer, and forwarded in
// order over the link; the cloud inserts them under their own ids, so a
// record forwarded twice is stored once.
//
// Edge nodes belong to a project, like every resource: the records an edge
// forwards are accepted only into its node's project.
//
// The hub and the link are servers of their own rather than the platform's
// bus: only edge traffic crosses the link whatever bus the platform uses
// (embedded NATS, a NATS cluster, Kafka), and no subject of the platform's
// bus is ever visible to a site.
package edge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// tokenPrefix starts every join token; the version lets its format change.
const tokenPrefix = "tsedge1"

// Node is an edge node as the cloud keeps it.
type Node struct {
	ID, ProjectID, Name, Description string
	// Joined is when the node exchanged its join token (zero: not yet).
	Joined time.Time
	// LastSeen is the node's last heartbeat.
	LastSeen time.Time
	// Latency is the link's round trip the hub last measured.
	Latency time.Duration
	// BufferDepth and BufferBytes are the records the node holds that
	// the cloud has not acknowledged; BufferOldest is the oldest one's
	// time.
	BufferDepth, BufferBytes int64
	BufferOldest             time.Time
	// Forwarded counts the records the cloud accepted from the node.
	Forwarded int64
	// Versions are the software and deployed versions the node reports.
	Versions  map[string]string
	CreatedAt time.Time
}

// Online reports whether the node was heard from within window.
func (n *Node) Online(now time.Time, window time.Duration) bool {
	return !n.LastSeen.IsZero() && now.Sub(n.LastSeen) <= window
}

// Nodes is the cloud's register of edge nodes.
type Nodes struct {
	db      *store.DB
	now     func() time.Time
	unplace UnplaceFunc
}

// UnplaceFunc takes what was placed on an edge node off it before the
// node is deleted, and says how many devices and tasks it changed.
type UnplaceFunc func(ctx context.Context, nodeID string) (devices, tasks int, err error)

// OnDelete sets what DeleteEdgeNode does to the node's devices and tasks;
// call it before serving.
func (s *Nodes) OnDelete(f UnplaceFunc) { s.unplace = f }

// NewNodes returns the register over db.
func NewNodes(db *store.DB, now func() time.Time) *Nodes {
	if now == nil {
		now = time.Now
	}
	return &Nodes{db: db, now: now}
}

// ErrNoHub means no cloud process runs an edge hub (--edge.leaf-addr), so
// no join token can say where to connect.
var ErrNoHub = errors.New("edge: no edge hub runs (start the cloud with --edge.leaf-addr)")

// ErrBadToken means a join token or credential is unknown, spent, revoked
// or malformed; the caller learns no more than that.
var ErrBadToken = errors.New("edge: join token or credential not valid")

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func randomSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Create adds a node and returns its one-time join token:
// "tsedge1.<node id>.<secret>.<hub certificate SHA-256>", so that the edge
// trusts only the hub it was made for.
func (s *Nodes) Create(ctx context.Context, n *Node) (token string, err error) {
	hub, err := s.Hub(ctx)
	if err != nil {
		return "", err
	}
	if n.ProjectID == "" {
		n.ProjectID = "default"
	}
	var one int
	if err := s.db.QueryRow(ctx, "SELECT 1 FROM projects WHERE id = ?", n.ProjectID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return "", api.NotFound("ProjectId", n.ProjectID)
	}
	n.ID = ids.New("edge")
	secret := randomSecret()
	now := s.now()
	n.CreatedAt = now
	_, err = s.db.Exec(ctx, `INSERT INTO edge_nodes (id, project_id, name, description, token_hash, credential_hash, joined_ms,
		last_seen_ms, latency_us, buffer_depth, buffer_bytes, buffer_oldest_ms, forwarded, versions, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, '', 0, 0, 0, 0, 0, 0, 0, '{}', ?, ?)`,
		n.ID, n.ProjectID, n.Name, n.Description, hashSecret(secret), now.UnixMilli(), now.UnixMilli())
	if s.db.IsUniqueViolation(err) {
		return "", api.Errorf(api.ResourceInUse, "Name: an edge node named %q exists in project %q", n.Name, n.ProjectID)
	}
	if err != nil {
		return "", err
	}
	return strings.Join([]string{tokenPrefix, n.ID, secret, hub.Fingerprint}, "."), nil
}

// Token is a parsed join token.
type Token struct {
	NodeID, Secret, Fingerprint string
}

// ParseToken splits a join token.
func ParseToken(t string) (Token, error) {
	p := strings.Split(strings.TrimSpace(t), ".")
	if len(p) != 4 || p[0] != tokenPrefix || !strings.HasPrefix(p[1], "edge-") || len(p[1]) > 64 || p[2] == "" || len(p[3]) != 64 {
		return Token{}, fmt.Errorf("%w: not a tsedge1 join token", ErrBadToken)
	}
	return Token{NodeID: p[1], Secret: p[2], Fingerprint: p[3]}, nil
}

// Join spends a join token and returns the node's credential, which only
// the node then holds (the cloud keeps its hash).
func (s *Nodes) Join(ctx context.Context, token string) (node *Node, credential string, err error) {
	t, err := ParseToken(token)
	if err != nil {
		return nil, "", err
	}
	credential = randomSecret()
	now := s.now().UnixMilli()
	// The token's hash is cleared in the same statement that checks it:
	// of two joins with one token exactly one succeeds.
	res, err := s.db.Exec(ctx, `UPDATE edge_nodes SET token_hash = '', credential_hash = ?, joined_ms = ?, updated_at = ?
		WHERE id = ? AND token_hash = ? AND token_hash <> ''`, hashSecret(credential), now, now, t.NodeID, hashSecret(t.Secret))
	if err != nil {
		return nil, "", err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return nil, "", ErrBadToken
	}
	node, err = s.Get(ctx, t.NodeID)
	return node, credential, err
}

// Authenticate reports whether credential is node id's current one.
func (s *Nodes) Authenticate(ctx context.Context, id, credential string) bool {
	var h string
	err := s.db.QueryRow(ctx, "SELECT credential_hash FROM edge_nodes WHERE id = ?", id).Scan(&h)
	if err != nil || h == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h), []byte(hashSecret(credential))) == 1
}

// Beat is what a node reports in a heartbeat.
type Beat struct {
	BufferDepth    int64             `json:"BufferDepth"`
	BufferBytes    int64             `json:"BufferBytes"`
	BufferOldestMs int64             `json:"BufferOldestMs"`
	Versions       map[string]string `json:"Versions"`
}

// maxVersions bounds what a node may report.
const maxVersions = 64

// Seen records a heartbeat of node id with the link's latency, and
// forwarded more records accepted from it.
func (s *Nodes) Seen(ctx context.Context, id string, b Beat, latency time.Duration, forwarded int64) error {
	if len(b.Versions) > maxVersions {
		return fmt.Errorf("edge: %d versions reported; at most %d", len(b.Versions), maxVersions)
	}
	for k, v := range b.Versions {
		if len(k) > 128 || len(v) > 128 {
			return errors.New("edge: a version name or value is longer than 128 bytes")
		}
	}
	vs, _ := json.Marshal(b.Versions)
	now := s.now().UnixMilli()
	_, err := s.db.Exec(ctx, `UPDATE edge_nodes SET last_seen_ms = ?, latency_us = ?, buffer_depth = ?, buffer_bytes = ?,
		buffer_oldest_ms = ?, versions = ?, forwarded = forwarded + ?, updated_at = ? WHERE id = ?`,
		now, latency.Microseconds(), b.BufferDepth, b.BufferBytes, b.BufferOldestMs, string(vs), forwarded, now, id)
	return err
}

// addForwarded adds n to the records the cloud accepted from node id.
func (s *Nodes) addForwarded(ctx context.Context, id string, n int64) error {
	_, err := s.db.Exec(ctx, "UPDATE edge_nodes SET forwarded = forwarded + ? WHERE id = ?", n, id)
	return err
}

const nodeColumns = `id, project_id, name, description, joined_ms, last_seen_ms, latency_us, buffer_depth, buffer_bytes,
	buffer_oldest_ms, forwarded, versions, created_at`

func scanNode(row interface{ Scan(...any) error }) (*Node, error) {
	var n Node
	var joined, seen, lat, oldest, created int64
	var versions string
	if err := row.Scan(&n.ID, &n.ProjectID, &n.Name, &n.Description, &joined, &seen, &lat, &n.BufferDepth, &n.BufferBytes,
		&oldest, &n.Forwarded, &versions, &created); err != nil {
		return nil, err
	}
	n.Joined, n.LastSeen, n.BufferOldest, n.CreatedAt = msTime(joined), msTime(seen), msTime(oldest), msTime(created)
	n.Latency = time.Duration(lat) * time.Microsecond
	_ = json.Unmarshal([]byte(versions), &n.Versions)
	return &n, nil
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Get returns node id, api.NotFound when there is none.
func (s *Nodes) Get(ctx context.Context, id string) (*Node, error) {
	n, err := scanNode(s.db.QueryRow(ctx, "SELECT "+nodeColumns+" FROM edge_nodes WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("EdgeNodeId", id)
	}
	return n, err
}

// List returns the nodes of projects (and ids when given), newest first,
// and their total.
func (s *Nodes) List(ctx context.Context, projects store.Projects, nodeIDs []string, offset, limit int) ([]*Node, int, error) {
	var w store.Where
	w.InProjects("project_id", projects).In("id", nodeIDs)
	cond, args := w.SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM edge_nodes"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.Query(ctx, "SELECT "+nodeColumns+" FROM edge_nodes"+cond+" ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, n)
	}
	return out, total, rows.Err()
}

// Delete removes node id: its credential stops working at once, and the
// hub cuts the node's link at its next sweep.
func (s *Nodes) Delete(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, "DELETE FROM edge_nodes WHERE id = ?", id)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return api.NotFound("EdgeNodeId", id)
	}
	return nil
}

// Hub is the cloud's leaf listener as join tokens name it.
type Hub struct {
	LeafURL, Fingerprint string
}

// hubName is the one hub row (and certificate row). Replicas share the
// certificate (edge_hub_certificates) and write the row on start, so its
// leaf URL is the last one started's: give them one advertised address.
const hubName = "default"

// Hub returns the running hub's address and certificate, ErrNoHub when
// none ever started.
func (s *Nodes) Hub(ctx context.Context) (Hub, error) {
	var h Hub
	err := s.db.QueryRow(ctx, "SELECT leaf_url, fingerprint FROM edge_hubs WHERE name = ?", hubName).Scan(&h.LeafURL, &h.Fingerprint)
	if errors.Is(err, sql.ErrNoRows) {
		return h, api.Errorf(api.FailedOperation, "%v", ErrNoHub)
	}
	return h, err
}

// setHub records the hub this process runs.
func (s *Nodes) setHub(ctx context.Context, h Hub) error {
	_, err := s.db.Exec(ctx, "INSERT INTO edge_hubs (name, leaf_url, fingerprint, updated_at) VALUES (?, ?, ?, ?)"+
		s.db.Dialect().OnConflict([]string{"name"}, "leaf_url", "fingerprint", "updated_at"),
		hubName, h.LeafURL, h.Fingerprint, s.now().UnixMilli())
	return err
}

// joined reports whether node id exists and holds a credential.
func (s *Nodes) joined(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM edge_nodes WHERE id = ? AND credential_hash <> ''", id).Scan(&n)
	return n > 0, err
}

// live returns the ids of every node that holds a credential.
func (s *Nodes) live(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.Query(ctx, "SELECT id FROM edge_nodes WHERE credential_hash <> ''")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}
