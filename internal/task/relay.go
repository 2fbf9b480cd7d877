package task

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

// Scaled out, the replica serving a person's live view may not run the
// task. It then asks for the frames on the bus, on an ephemeral subject
// (stored nowhere): every liveWantEvery it sends a "want" for the task's
// source, and the worker that runs the task relays that source's previews
// to the task's frames subject until the wants stop for liveWantTTL.
// Nothing crosses the bus while nobody watches.
const (
	liveWantSubject = "live.want"
	liveWantEvery   = time.Second
	liveWantTTL     = 5 * time.Second
)

func liveFramesSubject(taskID string, source int) string {
	return fmt.Sprintf("live.frames.%s.%d", taskID, source)
}

type liveWant struct {
	T string `json:"t"`
	S int    `json:"s"`
}

// relayPreviews serves wants for this worker's tasks until ctx ends.
func (w *Worker) relayPreviews(ctx context.Context) {
	eph, ok := w.d.Bus.(bus.Ephemeral)
	if !ok || w.d.Previews == nil {
		return
	}
	var mu sync.Mutex
	relays := map[liveWant]*time.Time{} // the last want of each relay running
	stop, err := eph.Listen(liveWantSubject, func(data []byte) {
		var want liveWant
		if json.Unmarshal(data, &want) != nil || want.T == "" || !w.d.Previews.Running(want.T) {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if last, ok := relays[want]; ok {
			*last = now
			return
		}
		last := &now
		relays[want] = last
		go func() {
			w.relay(ctx, eph, want, func() bool {
				mu.Lock()
				defer mu.Unlock()
				if time.Since(*last) < liveWantTTL {
					return true
				}
				delete(relays, want)
				return false
			})
		}()
	})
	if err != nil {
		w.d.Logger.WarnContext(ctx, "live view relay not started", "node", w.id, "err", err)
		return
	}
	<-ctx.Done()
	stop()
}

// relay sends one source's previews to its frames subject while wanted.
func (w *Worker) relay(ctx context.Context, eph bus.Ephemeral, want liveWant, wanted func() bool) {
	sub := w.d.Previews.Subscribe(want.T, want.S)
	defer sub.Stop()
	w.d.Logger.InfoContext(ctx, "live view relay started", "task", want.T, "source", want.S, "node", w.id)
	subject := liveFramesSubject(want.T, want.S)
	tick := time.NewTicker(liveWantEvery)
	defer tick.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !wanted() || !w.d.Previews.Running(want.T) {
				w.d.Logger.InfoContext(ctx, "live view relay stopped", "task", want.T, "source", want.S, "node", w.id)
				return
			}
		case f := <-sub.C:
			buf = appendFrameHeader(buf[:0], f, sub.Dropped(), time.Now())
			buf = append(buf, f.JPEG...)
			if err := eph.Send(subject, buf); err != nil {
				w.d.Logger.WarnContext(ctx, "live view frame not relayed", "task", want.T, "err", err)
			}
		}
	}
}

// watchRemote asks the bus for a source of a task another worker runs and
// returns its frames, newest wins, until stop is called.
func (l *Live) watchRemote(g liveGrant) (<-chan []byte, func(), error) {
	frames := make(chan []byte, 1)
	stopListen, err := l.eph.Listen(liveFramesSubject(g.T, g.S), func(data []byte) {
		m := append([]byte(nil), data...) // the bus reuses its buffer
		for {
			select {
			case frames <- m:
				return
			default:
			}
			select {
			case <-frames:
			default:
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	want, _ := json.Marshal(liveWant{T: g.T, S: g.S})
	go func() {
		t := time.NewTicker(liveWantEvery)
		defer t.Stop()
		for {
			if err := l.eph.Send(liveWantSubject, want); err != nil {
				l.log.Warn("live view want not sent", "task", g.T, "err", err)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return frames, func() { close(done); stopListen() }, nil
}
