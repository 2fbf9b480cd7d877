package logview

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/peers"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// ringWith is a ring holding one line of component, logged at.
func ringWith(t *testing.T, component, msg string, at time.Time) *telemetry.LogRing {
	t.Helper()
	r := telemetry.NewLogRing(100, 1<<20)
	rec := slog.NewRecord(at, slog.LevelInfo, msg, 0)
	rec.AddAttrs(slog.Int("n", 1))
	if err := r.Handler(slog.LevelDebug).WithAttrs([]slog.Attr{slog.String("component", component)}).Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return r
}

// DescribeLogs on one process shows the lines another process of the
// platform kept, asked over the bus (two peers on an embedded NATS, as
// two processes would be): newest first across both, each naming its
// process, with both processes' components; Process narrows to one.
func TestDescribeLogsAsksTheOtherProcesses(t *testing.T) {
	b, err := bus.Open(context.Background(), "nats://embedded", bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	eph := b.(bus.Ephemeral)
	now := time.Now()
	control := ringWith(t, "api", "action served", now.Add(-time.Second))
	worker := ringWith(t, "task", "task started", now)
	w, err := peers.Serve(eph, "test.logs", Answerer(worker, "w1 (worker)"), peers.Options{Name: "w1 (worker)"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	asker, err := peers.Serve(eph, "test.logs", Answerer(control, "cp (control)"), peers.Options{Name: "cp (control)"})
	if err != nil {
		t.Fatal(err)
	}
	defer asker.Stop()
	testenv.Eventually(t, 10*time.Second, "the control plane knows the worker", func() bool { return asker.Known() == 1 })

	got, err := describeLogs(context.Background(), control, "cp (control)", asker, &DescribeLogsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.LogSet) != 2 || got.LogSet[0].Message != "task started" || got.LogSet[0].Process != "w1 (worker)" ||
		got.LogSet[1].Message != "action served" || got.LogSet[1].Process != "cp (control)" {
		t.Errorf("LogSet %+v: want the worker's line then the control plane's", got.LogSet)
	}
	if len(got.ComponentSet) != 2 || got.ComponentSet[0] != "api" || got.ComponentSet[1] != "task" {
		t.Errorf("ComponentSet %v", got.ComponentSet)
	}
	if len(got.ProcessSet) != 2 || got.ProcessSet[0] != "cp (control)" || got.ProcessSet[1] != "w1 (worker)" || got.UnansweredProcesses != nil {
		t.Errorf("ProcessSet %v, unanswered %v", got.ProcessSet, got.UnansweredProcesses)
	}
	only, err := describeLogs(context.Background(), control, "cp (control)", asker, &DescribeLogsRequest{Process: "w1 (worker)", Component: "task"})
	if err != nil || len(only.LogSet) != 1 || only.LogSet[0].Process != "w1 (worker)" {
		t.Errorf("narrowed to the worker: %+v, %v", only, err)
	}
}
