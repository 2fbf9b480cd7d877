package algorithm

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// batcher gathers concurrent calls of a batching version into one call of
// up to max items, or what arrived within wait of the first one.
type batcher struct {
	d    *deployment
	max  int
	wait time.Duration
	in   chan *batchReq
}

type batchReq struct {
	ctx    context.Context
	inputs map[string]any
	out    map[string]any
	err    error
	done   chan struct{}
}

func newBatcher(d *deployment, max int, wait time.Duration) *batcher {
	return &batcher{d: d, max: max, wait: wait, in: make(chan *batchReq)}
}

// submit hands one call to the batcher and waits for its result.
func (b *batcher) submit(ctx context.Context, inputs map[string]any) (map[string]any, error) {
	r := &batchReq{ctx: ctx, inputs: inputs, done: make(chan struct{})}
	select {
	case b.in <- r:
	case <-ctx.Done():
		return nil, b.d.ctxErr(ctx)
	case <-b.d.ctx.Done():
		return nil, b.d.wrap("", ReasonUnavailable, ErrStopped)
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, b.d.ctxErr(ctx)
	}
}

func (d *deployment) ctxErr(ctx context.Context) error {
	reason := ReasonTimeout
	if errors.Is(ctx.Err(), context.Canceled) {
		reason = ReasonCanceled
	}
	d.fail("", reason)
	return d.wrap("", reason, ctx.Err())
}

// run gathers batches until the deployment stops; each batch is sent on
// its own goroutine so the next one gathers meanwhile.
func (b *batcher) run() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		var batch []*batchReq
		select {
		case r := <-b.in:
			batch = append(make([]*batchReq, 0, b.max), r)
		case <-b.d.ctx.Done():
			return
		}
		t.Reset(b.wait)
	gather:
		for len(batch) < b.max {
			select {
			case r := <-b.in:
				batch = append(batch, r)
			case <-t.C:
				break gather
			case <-b.d.ctx.Done():
				t.Stop()
				for _, r := range batch {
					r.err = b.d.wrap("", ReasonUnavailable, ErrStopped)
					close(r.done)
				}
				return
			}
		}
		t.Stop()
		b.d.wg.Add(1)
		go func() {
			defer b.d.wg.Done()
			b.send(batch)
		}()
	}
}

// send makes one call for the batch, bounded by the latest deadline of
// its members, and fans the results back.
func (b *batcher) send(batch []*batchReq) {
	live := batch[:0]
	var deadline time.Time
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.err = b.d.wrap("", ReasonCanceled, r.ctx.Err())
			close(r.done)
			continue
		}
		live = append(live, r)
		if dl, ok := r.ctx.Deadline(); ok && dl.After(deadline) {
			deadline = dl
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(b.d.ctx, deadline)
	defer cancel()
	b.d.batchSize.Observe(float64(len(live)))
	if len(live) == 1 {
		r := live[0]
		var inst string
		r.err = b.d.do(ctx, "", false, func(ctx context.Context, in *instance) error {
			var err error
			r.out, err = b.d.proto.infer(ctx, in, r.inputs)
			inst = in.id
			return err
		})
		noteBatch(live, inst)
		close(r.done)
		return
	}
	items := make([]map[string]any, len(live))
	for i, r := range live {
		items[i] = r.inputs
	}
	var res []itemResult
	var inst string
	err := b.d.do(ctx, "", false, func(ctx context.Context, in *instance) error {
		var err error
		res, err = b.d.proto.inferBatch(ctx, in, items)
		inst = in.id
		return err
	})
	noteBatch(live, inst)
	for i, r := range live {
		switch {
		case err != nil:
			r.err = err
		case res[i].err != nil:
			c := b.d.classify(ctx, res[i].err)
			b.d.fail(inst, c.reason)
			r.err = b.d.wrap(inst, c.reason, res[i].err)
		default:
			r.out = res[i].out
		}
		close(r.done)
	}
}

// noteBatch sets the batch size and instance on each member's call span
// (the batch's own context carries none of them).
func noteBatch(live []*batchReq, inst string) {
	for _, r := range live {
		if sp := trace.SpanFromContext(r.ctx); sp.IsRecording() {
			sp.SetAttributes(tracing.KeyBatchSize.Int(len(live)), tracing.KeyInstance.String(inst))
		}
	}
}
