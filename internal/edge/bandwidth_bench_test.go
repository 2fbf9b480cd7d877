package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

// countingProxy passes a TCP link through and counts its bytes, both ways:
// what the network between an edge and its cloud carries (TLS and NATS
// framing included).
type countingProxy struct {
	ln     net.Listener
	target string
	n      atomic.Int64
	mu     sync.Mutex
	conns  []net.Conn
}

func newCountingProxy(tb testing.TB, target string) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &countingProxy{ln: ln, target: target}
	tb.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			to := p.target
			p.mu.Unlock()
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.copy(up, c)
			go p.copy(c, up)
		}
	}()
	return p
}

func (p *countingProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.n.Add(int64(n))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// faceObjects are record j's objects of a face-structuring task, from a
// real photo (the 548×342 JPEG of internal/vision/cascade/testdata): the
// crop of a face (a 100×100 box with a 0.25 margin, JPEG quality 85, as the
// face-structuring flow cuts it) and the frame it came from (JPEG quality
// 85). Each record's are its own (the photo's brightness and the box move
// with j), as a camera's are: the link's compression (nats-server's
// s2_auto on leaf connections) finds nothing repeated across records.
func faceObjects(tb testing.TB, photo image.Image, j int) (crop, frame []byte) {
	b := photo.Bounds()
	img := image.NewRGBA(b)
	shift := uint8(j % 23)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := photo.At(x, y).RGBA()
			img.Set(x, y, color.RGBA{uint8(r>>8) ^ shift, uint8(g>>8) ^ shift, uint8(bl>>8) ^ shift, 255})
		}
	}
	frame, err := imageops.EncodeJPEGBytes(img, 85)
	if err != nil {
		tb.Fatal(err)
	}
	c, _, err := imageops.Crop(img, image.Rect(200+j%40, 60+j%30, 300+j%40, 160+j%30), 0.25)
	if err != nil {
		tb.Fatal(err)
	}
	if crop, err = imageops.EncodeJPEGBytes(c, 85); err != nil {
		tb.Fatal(err)
	}
	return crop, frame
}

// BenchmarkLinkBandwidth measures the bytes the link between an edge and
// its cloud carries per record of a face-structuring-like task (a face's
// JSON document with its crop, and with its crop and frame), both ways,
// TLS and NATS framing included, heartbeats at the default 5 s. The
// baseline is the raw size of the record's objects, the least any link
// must carry: ratio = link bytes / raw object bytes. Per camera, the link
// carries link-bytes/record × the camera's face records per second.
//
//	go test -run '^$' -bench LinkBandwidth -benchtime 3x ./internal/edge
func BenchmarkLinkBandwidth(b *testing.B) {
	jpg, err := os.ReadFile("../vision/cascade/testdata/messi5.jpg")
	if err != nil {
		b.Fatal(err)
	}
	photo, _, err := imageops.DecodeBytes(jpg, imageops.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	crops, frames := make([][]byte, n), make([][]byte, n)
	for j := range n {
		crops[j], frames[j] = faceObjects(b, photo, j)
	}
	for _, tc := range []struct {
		name   string
		frames bool
	}{{"crop", false}, {"crop+frame", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			var link, raw int64
			for i := range b.N {
				c := startCloud(b)
				_ = c.hub.Close()
				px := newCountingProxy(b, "127.0.0.1:0")
				h, err := StartHub(ctx, HubOptions{Addr: "127.0.0.1:0", Advertise: px.ln.Addr().String(), Dir: c.dir, Nodes: c.nodes,
					Records: c.data, Objects: c.blobs, Sweep: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = h.Close() })
				px.mu.Lock()
				px.target = h.Addr()
				px.mu.Unlock()
				_, tok := newNode(b, c, "site")
				edgeBlobs, err := fileblob.New(b.TempDir(), blob.Options{})
				if err != nil {
					b.Fatal(err)
				}
				l := startEdgeWith(b, c, b.TempDir(), tok, nil, func(o *LinkOptions) {
					o.Objects, o.Config.Heartbeat = edgeBlobs, 5*time.Second
				})
				testenv.Eventually(b, 30*time.Second, "link up", l.Up)
				recs := make([]data.Record, n)
				for j := range recs {
					r := data.Record{ID: fmt.Sprintf("rec-bw%04d%010d", i, j), TaskID: "task-bench", DeviceID: "dev-cam1", Type: "face", Time: time.Now()}
					doc := map[string]any{"TrackId": j, "Box": []int{200, 60, 100, 100}, "Score": 0.97, "Quality": 0.83}
					objects := [][]byte{crops[j]}
					if tc.frames {
						objects = append(objects, frames[j])
					}
					for k, o := range objects {
						key := fmt.Sprintf("projects/default/tasks/task-bench/2026/12/07/%s-%d-%d.jpg", r.ID, j, k)
						if _, err := edgeBlobs.Put(ctx, key, bytes.NewReader(o), blob.PutOptions{ContentType: "image/jpeg", Size: int64(len(o))}); err != nil {
							b.Fatal(err)
						}
						doc[[]string{"Crop", "Frame"}[k]] = map[string]any{"ObjectKey": key, "ContentType": "image/jpeg", "Size": len(o)}
						r.Objects = append(r.Objects, key)
						raw += int64(len(o))
					}
					r.Data, _ = json.Marshal(doc)
					recs[j] = r
				}
				before := px.n.Load()
				b.StartTimer()
				for lo := 0; lo < n; lo += 10 {
					if err := l.Enqueue(ctx, recs[lo:lo+10]); err != nil {
						b.Fatal(err)
					}
				}
				testenv.Eventually(b, time.Minute, "records forwarded", func() bool {
					left, err := l.Buffered(ctx)
					return err == nil && left == 0
				})
				b.StopTimer()
				link += px.n.Load() - before
				if _, total, err := c.data.Records(ctx, data.Query{Limit: 1}); err != nil || total != n {
					b.Fatalf("cloud has %d of %d records, %v", total, n, err)
				}
				rc, _, err := c.blobs.Get(ctx, recs[0].Objects[0])
				if err != nil {
					b.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, crops[0]) {
					b.Fatal("the cloud's crop differs from the edge's")
				}
			}
			perRec := float64(link) / float64(n*b.N)
			rawRec := float64(raw) / float64(n*b.N)
			b.ReportMetric(perRec, "link-bytes/record")
			b.ReportMetric(rawRec, "raw-bytes/record")
			b.ReportMetric(perRec/rawRec, "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}
