package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

// subjectArtifact reads a chunk of an artifact (an algorithm version's
// package or model file) the node's desired state names.
const subjectArtifact = "edge.%s.artifact" // artifactMsg → artifactReply

// artifactChunk is the most bytes one reply carries: with base64 it stays
// well within a link message.
const artifactChunk = 4 << 20

// ArtifactStore is where the cloud keeps artifacts (its blob store).
type ArtifactStore interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
}

// Fetch opens an artifact of the cloud's by its key.
type Fetch func(ctx context.Context, key string) (io.ReadCloser, error)

type artifactMsg struct {
	Key    string `json:"Key"`
	Offset int64  `json:"Offset"`
}

type artifactReply struct {
	Data  []byte `json:"Data"`
	Size  int64  `json:"Size"`
	Error string `json:"Error,omitempty"`
}

// allow records the artifacts a node's desired state names: the only ones
// it may read.
func (h *HubServer) allow(node string, d Desired) {
	keys := map[string]bool{}
	for _, a := range d.Algorithms {
		for _, f := range a.Artifacts {
			keys[f.Key] = true
		}
	}
	h.mu.Lock()
	h.artifacts[node] = keys
	h.mu.Unlock()
}

// artifact answers a chunk of an artifact of the node's desired state.
func (h *HubServer) artifact(node string, m *nats.Msg) any {
	var in artifactMsg
	if err := json.Unmarshal(m.Data, &in); err != nil || in.Offset < 0 {
		return artifactReply{Error: "artifact: not a request"}
	}
	h.mu.Lock()
	ok := h.artifacts[node][in.Key]
	h.mu.Unlock()
	if !ok || h.o.Artifacts == nil {
		return artifactReply{Error: fmt.Sprintf("artifact %q: not one of this node's", in.Key)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, info, err := h.o.Artifacts.Get(ctx, in.Key)
	if err != nil {
		return artifactReply{Error: "artifact: " + err.Error()}
	}
	defer rc.Close()
	if s, ok := rc.(io.Seeker); ok {
		_, err = s.Seek(in.Offset, io.SeekStart)
	} else {
		_, err = io.CopyN(io.Discard, rc, in.Offset)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return artifactReply{Error: "artifact: " + err.Error()}
	}
	buf := make([]byte, min(artifactChunk, max(info.Size-in.Offset, 0)))
	n, err := io.ReadFull(rc, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return artifactReply{Error: "artifact: " + err.Error()}
	}
	return artifactReply{Data: buf[:n], Size: info.Size}
}

// fetch reads an artifact from the cloud, a chunk per request.
func (l *Link) fetch(ctx context.Context, key string) (io.ReadCloser, error) {
	r := &artifactReader{ctx: ctx, l: l, key: key, size: -1}
	if err := r.next(); err != nil {
		return nil, err
	}
	return r, nil
}

type artifactReader struct {
	ctx  context.Context
	l    *Link
	key  string
	off  int64 // bytes received
	size int64
	buf  []byte
}

func (r *artifactReader) next() error {
	body, _ := json.Marshal(artifactMsg{Key: r.key, Offset: r.off})
	rctx, cancel := context.WithTimeout(r.ctx, 60*time.Second)
	defer cancel()
	resp, err := r.l.nc.RequestWithContext(rctx, fmt.Sprintf(subjectArtifact, r.l.cred.NodeID), body)
	if err != nil {
		return err
	}
	var rep artifactReply
	if err := json.Unmarshal(resp.Data, &rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	if r.size >= 0 && rep.Size != r.size {
		return fmt.Errorf("artifact %q changed size while read", r.key)
	}
	r.size, r.buf = rep.Size, rep.Data
	r.off += int64(len(rep.Data))
	if len(rep.Data) == 0 && r.off < r.size {
		return fmt.Errorf("artifact %q: empty chunk at %d of %d", r.key, r.off, r.size)
	}
	return nil
}

func (r *artifactReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *artifactReader) Close() error { return nil }
