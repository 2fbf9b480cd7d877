package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// Records buffered on an edge while its cloud is away carry their task's
// objects: once the hub is back, each cloud record names the same objects
// under the node's project, with the edge's bytes, in its keys and its
// document. An object the cloud already has is not written again, an
// object of another task (an upload) and one past the record's bound stay
// on the edge, and batches stay within a link message.
func TestLinkForwardsRecordObjects(t *testing.T) {
	ctx := context.Background()
	c := startCloud(t)
	nodeID, tok := newNode(t, c, "site")
	n, err := c.nodes.Get(ctx, nodeID)
	if err != nil {
		t.Fatal(err)
	}
	edgeBlobs, err := fileblob.New(t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := startEdgeWith(t, c, t.TempDir(), tok, nil, func(o *LinkOptions) { o.Objects = edgeBlobs })
	testenv.Eventually(t, 30*time.Second, "link up", l.Up)
	addr := c.hub.Addr()
	_ = c.hub.Close()
	testenv.Eventually(t, 30*time.Second, "link down", func() bool { return !l.Up() })

	put := func(key string, b []byte) {
		if _, err := edgeBlobs.Put(ctx, key, bytes.NewReader(b), blob.PutOptions{ContentType: "image/jpeg", Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
	}
	// 30 records of 200 KiB of crops each: 6 MiB, more than one link
	// message of batches.
	const n30 = 30
	var recs []data.Record
	crops := map[string][]byte{}
	for i := range n30 {
		key := fmt.Sprintf("projects/default/tasks/task-a/2026/12/07/crop%03d.jpg", i)
		b := bytes.Repeat([]byte{byte(i)}, 200<<10)
		put(key, b)
		crops[key] = b
		recs = append(recs, data.Record{ID: fmt.Sprintf("rec-obj%014d", i), TaskID: "task-a", Type: "face", Time: time.Now(),
			Data: json.RawMessage(`{"Crop": {"ObjectKey": "` + key + `", "Size": 204800}}`), Objects: []string{key}})
	}
	// One record names an upload and an object past the bound: neither
	// crosses; its own crop does.
	put("projects/default/uploads/up-1.jpg", []byte("upload"))
	put("projects/default/tasks/task-a/big.jpg", make([]byte, maxRecordObjects+1))
	put("projects/default/tasks/task-a/small.jpg", []byte("small"))
	recs = append(recs, data.Record{ID: "rec-objmixed", TaskID: "task-a", Type: "face", Time: time.Now(), Data: json.RawMessage(`{}`),
		Objects: []string{"projects/default/uploads/up-1.jpg", "projects/default/tasks/task-a/big.jpg", "projects/default/tasks/task-a/small.jpg"}})
	// The cloud already has this one (a batch sent again would find it):
	// it is not overwritten.
	cloudKey := func(key string) string {
		return strings.Replace(key, "projects/default/", "projects/"+n.ProjectID+"/", 1)
	}
	first := "projects/default/tasks/task-a/2026/12/07/crop000.jpg"
	if _, err := c.blobs.Put(ctx, cloudKey(first), strings.NewReader("kept"), blob.PutOptions{Size: 4}); err != nil {
		t.Fatal(err)
	}
	if err := l.Enqueue(ctx, recs); err != nil {
		t.Fatal(err)
	}

	c.startHub(t, addr)
	testenv.Eventually(t, time.Minute, "buffer forwarded", func() bool {
		left, err := l.Buffered(ctx)
		return err == nil && left == 0
	})
	got, total, err := c.data.Records(ctx, data.Query{Limit: 100})
	if err != nil || total != n30+1 {
		t.Fatalf("cloud has %d records, %v", total, err)
	}
	read := func(key string) []byte {
		rc, _, err := c.blobs.Get(ctx, key)
		if err != nil {
			t.Fatalf("cloud object %s: %v", key, err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return b
	}
	for _, r := range got {
		if r.ID == "rec-objmixed" {
			if want := []string{cloudKey("projects/default/tasks/task-a/small.jpg")}; len(r.Objects) != 1 || r.Objects[0] != want[0] {
				t.Errorf("mixed record's objects %v, want %v", r.Objects, want)
			} else if b := read(r.Objects[0]); string(b) != "small" {
				t.Errorf("small object %q", b)
			}
			continue
		}
		if len(r.Objects) != 1 {
			t.Fatalf("record %s objects %v", r.ID, r.Objects)
		}
		key := r.Objects[0]
		var edgeKey string
		for k := range crops {
			if cloudKey(k) == key {
				edgeKey = k
			}
		}
		if edgeKey == "" {
			t.Fatalf("record %s names %s, not one of the edge's under the node's project", r.ID, key)
		}
		if !bytes.Contains(r.Data, []byte(`"`+key+`"`)) {
			t.Errorf("record %s document %s does not name %s", r.ID, r.Data, key)
		}
		b := read(key)
		if edgeKey == first {
			if string(b) != "kept" {
				t.Errorf("the cloud's object was overwritten")
			}
		} else if !bytes.Equal(b, crops[edgeKey]) {
			t.Errorf("cloud object %s: %d bytes differ from the edge's %d", key, len(b), len(crops[edgeKey]))
		}
	}
}

// A node's answers reach only that node: another node subscribing to
// every inbox (the shared one and the first node's own) gets none of the
// first node's replies, which carry device credentials and secrets.
func TestLinkRepliesReachOnlyTheirNode(t *testing.T) {
	c := startCloud(t)
	idA, tokA := newNode(t, c, "a")
	_, tokB := newNode(t, c, "b")
	a := startEdge(t, c, t.TempDir(), tokA, nil)
	b := startEdge(t, c, t.TempDir(), tokB, nil)
	testenv.Eventually(t, 30*time.Second, "links up", func() bool { return a.Up() && b.Up() })
	var subs []*nats.Subscription
	for _, subject := range []string{"_INBOX.>", inboxPrefix(idA) + ".>", ">"} {
		s, err := b.nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	batch, _ := json.Marshal([]wireRecord{{ID: "rec-0000000000000000002", Type: "t", Data: json.RawMessage(`{}`)}})
	for range 3 {
		if err := a.send(context.Background(), fmt.Sprintf(subjectRecords, idA), batch, 1); err != nil {
			t.Fatal(err)
		}
	}
	// b's own request after a's: the hub answers in order on b's leaf, so
	// anything of a's routed to b would already be queued.
	if err := b.send(context.Background(), fmt.Sprintf(subjectRecords, b.NodeID()), batch, 1); err != nil {
		t.Fatal(err)
	}
	for i, s := range subs {
		for {
			m, err := s.NextMsg(0)
			if err != nil {
				break
			}
			if strings.HasPrefix(m.Subject, "_INBOX") && !strings.HasPrefix(m.Subject, inboxPrefix(b.NodeID())) {
				t.Errorf("subscription %d of node b got %s: %s", i, m.Subject, m.Data)
			}
		}
	}
}
