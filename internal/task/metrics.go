package task

import "github.com/prometheus/client_golang/prometheus"

// taskCollector exports the counters of the tasks running on a worker at
// scrape time, read from the counters the runners keep anyway, so that the
// message path pays nothing for them. A task's series start again from 0
// on the worker it moves to, as counters of a restarted process do.
type taskCollector struct {
	w        *Worker
	messages *prometheus.Desc
	records  *prometheus.Desc
	events   *prometheus.Desc
	frames   *prometheus.Desc
}

func newTaskCollector(w *Worker) *taskCollector {
	return &taskCollector{w: w,
		messages: prometheus.NewDesc("tianshu_task_messages_total",
			"Messages of a task running on this worker, by outcome: received from its sources, completed, failed, dropped (latest-frame-wins replaced them before the flow took them).",
			[]string{"task", "outcome"}, nil),
		records: prometheus.NewDesc("tianshu_task_records_total", "Records a task running on this worker stored.", []string{"task"}, nil),
		events:  prometheus.NewDesc("tianshu_task_events_total", "Events a task running on this worker published.", []string{"task"}, nil),
		frames: prometheus.NewDesc("tianshu_task_frames_total",
			"Frames of a task running on this worker by what its gated detector did: detected (whole frame), motion (new objects searched where the picture changed), tracked (objects followed near their last boxes), skipped (nothing to do). Only flows that output a decision.",
			[]string{"task", "decision"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *taskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.records
	ch <- c.events
	ch <- c.frames
}

// Collect implements prometheus.Collector.
func (c *taskCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.w.runnersNow() {
		id, s := r.task.ID, r.stats
		for _, o := range []struct {
			outcome string
			n       int64
		}{{"received", s.received.Load()}, {"completed", s.completed.Load()}, {"failed", s.failed.Load()}, {"dropped", s.dropped.Load()}} {
			ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(o.n), id, o.outcome)
		}
		ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(s.records.Load()), id)
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(s.events.Load()), id)
		for i, d := range frameDecisions {
			if n := s.frames[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(n), id, d)
			}
		}
	}
}
