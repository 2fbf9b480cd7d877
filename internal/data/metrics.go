package data

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// metrics are the data center's tianshu_data_* metrics.
type metrics struct {
	written      prometheus.Counter     // records committed
	writeErrors  prometheus.Counter     // records whose batch failed
	batchSize    prometheus.Histogram   // records per committed batch
	flushLatency prometheus.Histogram   // seconds per batch transaction
	deleted      *prometheus.CounterVec // reason: retention, api
	uploads      *prometheus.CounterVec // result: created, completed, terminated, expired, failed
	uploadBytes  prometheus.Counter     // bytes moved into the blob store
	objects      prometheus.Counter     // objects put through PutObject
	refused      *prometheus.CounterVec // reason: storage_quota

	embeddingsRefused prometheus.Counter // stored but not indexed (dimension)

	watchMatched      prometheus.Counter // faces compared with watchlists
	watchHits         prometheus.Counter
	watchMatchSeconds prometheus.Histogram
	watchReloads      *prometheus.CounterVec // how: full, changes
	watchFacesLoaded  prometheus.Counter     // reference faces read into a matcher
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_records_written_total", Help: "Records committed to the store.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_record_write_errors_total", Help: "Records whose batch failed to commit (reported to the writer's caller, not retried).",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tianshu_data_record_batch_size", Help: "Records per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		flushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tianshu_data_record_flush_duration_seconds", Help: "Time to insert and commit one batch of records.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_data_records_deleted_total", Help: "Records deleted, by reason (retention, api).",
		}, []string{"reason"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_data_uploads_total", Help: "tus uploads by event (created, completed, terminated, expired, failed).",
		}, []string{"event"}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_upload_bytes_total", Help: "Bytes of completed uploads moved into the blob store.",
		}),
		objects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_objects_written_total", Help: "Objects (crops, frames) stored through PutObject.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_data_records_refused_total", Help: "Records of tasks' store nodes refused before anything was written, by reason (storage_quota).",
		}, []string{"reason"}),
		embeddingsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_embeddings_not_indexed_total", Help: "Record embeddings stored but refused by the vector index (another dimension than their project and type's: a different model).",
		}),
		watchMatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_watchlist_faces_matched_total", Help: "Faces that match nodes compared with their project's enabled watchlists.",
		}),
		watchHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_watchlist_hits_total", Help: "Watchlist hits: a face at or above a list's threshold for one of its people (one per list).",
		}),
		watchMatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tianshu_data_watchlist_match_seconds", Help: "Time to compare one face with its project's watchlists (in memory, after the lists are loaded).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 9),
		}),
		watchReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_data_watchlist_reloads_total", Help: "Times a matcher brought a project's watchlists up to date, by how: full (the whole project, at first use or when the change log cannot say what changed) or changes (only the lists and people changed).",
		}, []string{"how"}),
		watchFacesLoaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tianshu_data_watchlist_faces_loaded_total", Help: "Reference faces read from the store into a matcher's memory (a full reload reads every face of a project's enabled lists; a change only the faces of the people changed).",
		}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	if m.written, err = telemetry.Register(r, m.written); err != nil {
		return nil, err
	}
	if m.writeErrors, err = telemetry.Register(r, m.writeErrors); err != nil {
		return nil, err
	}
	if m.batchSize, err = telemetry.Register(r, m.batchSize); err != nil {
		return nil, err
	}
	if m.flushLatency, err = telemetry.Register(r, m.flushLatency); err != nil {
		return nil, err
	}
	if m.deleted, err = telemetry.Register(r, m.deleted); err != nil {
		return nil, err
	}
	if m.uploads, err = telemetry.Register(r, m.uploads); err != nil {
		return nil, err
	}
	if m.uploadBytes, err = telemetry.Register(r, m.uploadBytes); err != nil {
		return nil, err
	}
	if m.refused, err = telemetry.Register(r, m.refused); err != nil {
		return nil, err
	}
	if m.objects, err = telemetry.Register(r, m.objects); err != nil {
		return nil, err
	}
	if m.embeddingsRefused, err = telemetry.Register(r, m.embeddingsRefused); err != nil {
		return nil, err
	}
	if m.watchMatched, err = telemetry.Register(r, m.watchMatched); err != nil {
		return nil, err
	}
	if m.watchHits, err = telemetry.Register(r, m.watchHits); err != nil {
		return nil, err
	}
	if m.watchMatchSeconds, err = telemetry.Register(r, m.watchMatchSeconds); err != nil {
		return nil, err
	}
	if m.watchReloads, err = telemetry.Register(r, m.watchReloads); err != nil {
		return nil, err
	}
	if m.watchFacesLoaded, err = telemetry.Register(r, m.watchFacesLoaded); err != nil {
		return nil, err
	}
	return m, nil
}
