package devicecenter

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

func TestAckTracker(t *testing.T) {
	var a ackTracker
	for _, s := range []uint64{3, 4, 6, 7} { // 5 never came (a file that did not decode)
		a.sent(s)
	}
	steps := []struct {
		ack   uint64
		upTo  uint64
		moved bool
	}{{4, 0, false}, {6, 0, false}, {3, 6, true}, {7, 7, true}}
	for _, st := range steps {
		upTo, moved := a.ack(st.ack)
		if upTo != st.upTo || moved != st.moved {
			t.Fatalf("ack %d: got %d %v, want %d %v", st.ack, upTo, moved, st.upTo, st.moved)
		}
	}
}

// A device source with DropPolicy "none" over a replay folder: stable
// message ids, back-pressure (Live false), a checkpoint over every frame
// acknowledged, and a new source built from that checkpoint resumes after it.
func TestLosslessDeviceSourceResumes(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	media, err := execpolicy.NewMedia(execpolicy.MediaConfig{Root: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := device.NewRuntime(device.Options{Media: media})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	svc := New(db, box, rt, nil, slog.New(slog.DiscardHandler), time.Now)
	for i := range 3 {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 16+8*i, 16)), nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.jpg", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := &Device{Name: "cam", Config: device.Config{Driver: "replay", Address: dir, FPS: 100}}
	if err := svc.Create(ctx, d); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var saved []string
	env := pipeline.SourceEnv{TaskID: "task-1", ProjectID: "default", SavePosition: func(_ context.Context, p string) error {
		mu.Lock()
		saved = append(saved, p)
		mu.Unlock()
		return nil
	}}
	// run reads n frames from a source built with the given checkpoint and
	// acknowledges them (out of order in pairs), then stops it.
	run := func(position string, n int) []pipeline.Message {
		env.Position = position
		src, err := svc.NewTaskSource(ctx, pipeline.SourceSpec{Type: "device", Id: d.ID, DropPolicy: pipeline.DropNone}, env)
		if err != nil {
			t.Fatal(err)
		}
		if src.Live() {
			t.Fatal("a DropPolicy none source is live")
		}
		rctx, cancel := context.WithCancel(ctx)
		var got []pipeline.Message
		var held *pipeline.Message
		errc := make(chan error, 1)
		go func() {
			errc <- src.Run(rctx, func(_ context.Context, m pipeline.Message) error {
				if rctx.Err() != nil {
					return rctx.Err()
				}
				got = append(got, m)
				if held == nil {
					held = &m
				} else {
					m.Ack(nil)
					held.Ack(nil)
					held = nil
				}
				if len(got) == n {
					cancel()
				}
				return nil
			})
		}()
		select {
		case <-errc:
		case <-time.After(30 * time.Second):
			t.Fatal("source did not stop")
		}
		cancel()
		return got
	}
	first := run("", 10)
	for i, m := range first {
		seq := uint64(i + 1)
		if want := fmt.Sprintf("%s-%d", d.ID, seq); m.ID != want {
			t.Fatalf("message %d id %q, want %q", i, m.ID, want)
		}
		if w := m.Data["width"].(int64); w != int64(16+8*((seq-1)%3)) {
			t.Fatalf("frame %d is %d wide", seq, w)
		}
	}
	mu.Lock()
	last := saved[len(saved)-1]
	mu.Unlock()
	if last != "10" {
		t.Fatalf("checkpoints %v, want the last to be 10", saved)
	}
	second := run(last, 4)
	if second[0].ID != d.ID+"-11" || second[0].Data["frame"].(int64) != 11 || second[0].Data["width"].(int64) != 24 {
		t.Fatalf("resumed at %q frame %v width %v, want frame 11 (file 1, 24 wide)", second[0].ID, second[0].Data["frame"], second[0].Data["width"])
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(saved); i++ {
		a, _ := strconv.Atoi(saved[i-1])
		b, _ := strconv.Atoi(saved[i])
		if b <= a {
			t.Fatalf("checkpoint moved back: %v", saved)
		}
	}
}
