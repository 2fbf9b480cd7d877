package task

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// LivePath is where the live view's WebSocket streams are served (the
// console's page is /live).
const LivePath = "/livestream/"

// Live view limits and timings.
const (
	// liveTicketTTL is how long a ticket from DescribeLiveStream may be used
	// to connect; it is used once, at the start of a stream.
	liveTicketTTL = time.Minute
	// liveMaxStream bounds one stream, so that a revoked session or role
	// stops watching within it: the console then asks for a new ticket,
	// which the gateway checks again.
	liveMaxStream = 10 * time.Minute
	// liveWriteTimeout drops a viewer whose connection takes a frame no
	// faster than this.
	liveWriteTimeout = 10 * time.Second
	// liveCheckEvery is how often a stream checks that its task still runs
	// here.
	liveCheckEvery   = 2 * time.Second
	liveTicketPrefix = "tsl1."
)

// LiveConfig limits the live view: how many streams this server serves at
// once, and how many of them one project may hold (0: no limit).
type LiveConfig struct {
	MaxViewers           int
	MaxViewersPerProject int
}

// Live serves the live view: the frames a task processes, with the objects
// its flow found, over WebSocket. Streams are opened with a short-lived
// ticket that the action DescribeLiveStream hands out after the gateway
// authenticated the caller (session or signature) and the task and source
// were found visible to it; the ticket is an HMAC over what it allows, so
// any replica sharing the master key accepts it.
type Live struct {
	svc      *Service
	previews *Previews
	key      []byte
	cfg      LiveConfig
	log      *slog.Logger
	now      func() time.Time
	upgrader websocket.Upgrader
	// eph carries frames of tasks other workers run; nil: only this
	// process's tasks can be watched.
	eph bus.Ephemeral

	mu         sync.Mutex
	total      int
	perProject map[string]int

	viewers prometheus.Gauge
	frames  prometheus.Counter
	dropped prometheus.Counter
}

// NewLive returns the live view over previews (this process's tasks).
// key signs tickets; it must be the same on every replica.
func NewLive(svc *Service, previews *Previews, key []byte, cfg LiveConfig, log *slog.Logger, reg prometheus.Registerer) *Live {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Live{svc: svc, previews: previews, key: key, cfg: cfg, log: log, now: svc.now, perProject: map[string]int{},
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tianshu_live_viewers", Help: "Live view streams open on this server."}),
		frames:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_live_frames_sent_total", Help: "Frames sent to live view streams."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "tianshu_live_frames_dropped_total", Help: "Frames a live view stream skipped because its viewer was slower than the task."}),
	}
	l.viewers = telemetry.MustRegister(reg, l.viewers)
	l.frames = telemetry.MustRegister(reg, l.frames)
	l.dropped = telemetry.MustRegister(reg, l.dropped)
	// The browser sends the page's origin; the default check refuses any
	// other, so another site cannot open a stream with the person's cookie.
	l.upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 64 << 10}
	svc.live = l
	return l
}

// UseBus lets the live view show tasks that other workers run, relayed
// over eph (see relay.go).
func (l *Live) UseBus(eph bus.Ephemeral) { l.eph = eph }

// liveGrant is what a ticket allows: watching one source of one task.
type liveGrant struct {
	T string `json:"t"` // task
	S int    `json:"s"` // source index
	P string `json:"p"` // project
	E int64  `json:"e"` // expiry, Unix seconds
	N string `json:"n"` // nonce
}

func (l *Live) ticket(g liveGrant) (string, error) {
	g.N = ids.Random(8, "abcdefghijklmnopqrstuvwxyz0123456789")
	b, err := json.Marshal(g)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return liveTicketPrefix + payload + "." + l.mac(payload), nil
}

func (l *Live) mac(payload string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("tianshu live ticket\n")) // domain separation from other uses of the key
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errBadTicket = errors.New("invalid or expired live ticket; ask DescribeLiveStream for a new one")

func (l *Live) verify(tok string) (liveGrant, error) {
	var g liveGrant
	rest, ok := strings.CutPrefix(tok, liveTicketPrefix)
	if !ok || len(tok) > 1024 {
		return g, errBadTicket
	}
	payload, mac, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(l.mac(payload))) {
		return g, errBadTicket
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(b, &g) != nil || g.T == "" {
		return g, errBadTicket
	}
	if l.now().Unix() >= g.E {
		return g, errBadTicket
	}
	return g, nil
}

// DescribeLiveStreamRequest is the request of DescribeLiveStream.
type DescribeLiveStreamRequest struct {
	TaskId string `json:"TaskId" validate:"required,max=64"`
	// SourceIndex is the index in the task's Sources of the source to watch.
	SourceIndex int `json:"SourceIndex" validate:"min=0,max=63"`
}

// DescribeLiveStreamResponse is the response of DescribeLiveStream.
type DescribeLiveStreamResponse struct {
	// Url is the WebSocket path to open (on this server) within
	// ExpiresTime; each binary message is one frame: a 4-byte big-endian
	// length, that many bytes of JSON (LiveFrameHeader), then the JPEG.
	// The viewer sends a message (any) for each frame it has shown; the
	// next frame, the newest, comes after it.
	Url         string `json:"Url"`
	ExpiresTime string `json:"ExpiresTime"`
	SourceType  string `json:"SourceType"`
	SourceId    string `json:"SourceId"`
	NodeId      string `json:"NodeId"`
}

// LiveFrameHeader is the JSON part of a live view frame message.
type LiveFrameHeader struct {
	TaskId string `json:"TaskId"`
	Source int    `json:"Source"`
	Key    string `json:"Key"`
	Seq    int64  `json:"Seq"`
	Width  int    `json:"Width"`
	Height int    `json:"Height"`
	// CapturedMs, ProcessedMs and SentMs are Unix milliseconds: when the
	// frame was captured, when the flow finished with it, and when this
	// server sent it.
	CapturedMs  float64         `json:"CapturedMs"`
	ProcessedMs float64         `json:"ProcessedMs"`
	SentMs      float64         `json:"SentMs"`
	ContentType string          `json:"ContentType"`
	Objects     []PreviewObject `json:"Objects"`
	// Dropped counts frames this stream skipped so far because the viewer
	// was slower than the task.
	Dropped int64 `json:"Dropped"`
}

func registerLiveAction(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "DescribeLiveStream", Summary: "A short-lived URL of a WebSocket stream of the frames one source of a running task processes, with the objects its flow found on each (box, track id, label, score) and the capture time. Each binary message is a frame (4-byte big-endian length, JSON header, JPEG); send a message back for each to get the next, newest one. Open it within a minute; a stream lasts at most 10 minutes.", Permission: taskRead},
		func(ctx context.Context, c *api.Caller, r *DescribeLiveStreamRequest) (*DescribeLiveStreamResponse, error) {
			t, err := s.visible(ctx, c, r.TaskId)
			if err != nil {
				return nil, err
			}
			if r.SourceIndex >= len(t.Sources) {
				return nil, api.InvalidValue("SourceIndex", "task %s has %d sources (0 to %d)", t.ID, len(t.Sources), len(t.Sources)-1)
			}
			src := t.Sources[r.SourceIndex]
			if src.Type == "device" && s.devices != nil {
				// A role narrowed to some devices watches only those.
				projectID, group, err := s.devices(ctx, src.Id)
				if err != nil || !c.SeesDevice(projectID, src.Id, group) {
					return nil, api.NotFound("SourceIndex", fmt.Sprint(r.SourceIndex))
				}
			}
			l := s.live
			if l == nil {
				return nil, api.Errorf(api.FailedOperation, "this server has no live view (it does not run the api module)")
			}
			if t.Status != StatusRunning {
				return nil, api.Errorf(api.FailedOperation, "TaskId: task %s is %s; only a running task can be watched", t.ID, t.Status)
			}
			if !l.previews.Running(t.ID) && l.eph == nil {
				return nil, api.Errorf(api.FailedOperation, "TaskId: task %s runs on node %s, and this server's bus cannot relay its frames (Kafka); open the console of the process that runs it (see docs/console.md, Live view)", t.ID, t.NodeID)
			}
			exp := l.now().Add(liveTicketTTL).Truncate(time.Second)
			tok, err := l.ticket(liveGrant{T: t.ID, S: r.SourceIndex, P: t.ProjectID, E: exp.Unix()})
			if err != nil {
				return nil, err
			}
			return &DescribeLiveStreamResponse{Url: LivePath + "?ticket=" + tok, ExpiresTime: exp.UTC().Format(time.RFC3339),
				SourceType: src.Type, SourceId: src.Id, NodeId: t.NodeID}, nil
		})
}

// admit counts a new stream of project, or says which limit it hits.
func (l *Live) admit(project string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.MaxViewers > 0 && l.total >= l.cfg.MaxViewers {
		return fmt.Errorf("this server serves %d live streams already (api.live.max-viewers)", l.total)
	}
	if l.cfg.MaxViewersPerProject > 0 && l.perProject[project] >= l.cfg.MaxViewersPerProject {
		return fmt.Errorf("project %s watches %d live streams already (api.live.max-viewers-per-project)", project, l.perProject[project])
	}
	l.total++
	l.perProject[project]++
	l.viewers.Set(float64(l.total))
	return nil
}

func (l *Live) leave(project string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perProject[project]--; l.perProject[project] <= 0 {
		delete(l.perProject, project)
	}
	l.viewers.Set(float64(l.total))
}

// ServeHTTP serves one stream: GET /livestream/?ticket=… upgraded to WebSocket.
func (l *Live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	g, err := l.verify(r.URL.Query().Get("ticket"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if err := l.admit(g.P); err != nil {
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	}
	defer l.leave(g.P)
	conn, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the error
	}
	defer conn.Close()
	sub := l.previews.Subscribe(g.T, g.S)
	defer sub.Stop()
	var remote <-chan []byte
	running := func() bool { return l.previews.Running(g.T) }
	if !running() && l.eph != nil {
		// Another worker runs the task: its frames come over the bus.
		frames, stop, err := l.watchRemote(g)
		if err != nil {
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "bus unavailable"), time.Now().Add(time.Second))
			return
		}
		defer stop()
		remote = frames
		running = func() bool {
			t, err := l.svc.Get(r.Context(), g.T)
			return err != nil || t.Status == StatusRunning // a store hiccup does not end the stream
		}
	}
	l.log.Info("live stream opened", "task", g.T, "source", g.S, "project", g.P, "relayed", remote != nil)
	reason := l.stream(r.Context(), conn, sub, remote, running)
	l.log.Info("live stream closed", "task", g.T, "source", g.S, "reason", reason, "dropped", sub.Dropped())
}

// stream sends sub's frames to conn until the viewer leaves, the task
// stops here, the stream's time is up or the server stops; it returns why.
//
// One frame is in flight at a time: the viewer answers each frame it drew
// with a message (any), and only then is the next sent. Meanwhile newer
// frames replace the one waiting in sub, so a slow viewer or a slow link
// gets the newest frame next, never a backlog queued in socket buffers.
//
// Frames come from sub (this process runs the task) or, already encoded by
// the worker that runs it, from remote.
func (l *Live) stream(ctx context.Context, conn *websocket.Conn, sub *PreviewSub, remote <-chan []byte, running func() bool) string {
	gone := make(chan struct{})
	acks := make(chan struct{}, 1)
	go func() {
		// Reading takes the acknowledgements, answers pings and notices
		// the viewer closing.
		defer close(gone)
		conn.SetReadLimit(4096)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
			select {
			case acks <- struct{}{}:
			default:
			}
		}
	}()
	closeWith := func(code int, text string) string {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
		return text
	}
	end := time.NewTimer(liveMaxStream)
	defer end.Stop()
	check := time.NewTicker(liveCheckEvery)
	defer check.Stop()
	var buf []byte
	var reported int64
	frames, relayed := sub.C, remote
	for {
		select {
		case <-ctx.Done():
			return closeWith(websocket.CloseGoingAway, "server stopping")
		case <-gone:
			return "viewer left"
		case <-end.C:
			return closeWith(websocket.CloseNormalClosure, "stream time is up; reconnect")
		case <-check.C:
			if !running() {
				return closeWith(websocket.CloseNormalClosure, "task is not running")
			}
		case <-acks:
			frames, relayed = sub.C, remote
		case m := <-relayed:
			_ = conn.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
			if err := conn.WriteMessage(websocket.BinaryMessage, m); err != nil {
				return "write failed: " + err.Error()
			}
			l.frames.Inc()
			frames, relayed = nil, nil // until the viewer acknowledges this one
		case f := <-frames:
			d := sub.Dropped()
			l.dropped.Add(float64(d - reported))
			reported = d
			buf = appendFrameHeader(buf[:0], f, d, l.now())
			_ = conn.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
			if err := writeFrame(conn, buf, f.JPEG); err != nil {
				return "write failed: " + err.Error()
			}
			l.frames.Inc()
			frames, relayed = nil, nil // until the viewer acknowledges this one
		}
	}
}

// writeFrame writes one message: the header, then the picture as the task
// holds it, without copying it.
func writeFrame(conn *websocket.Conn, header, picture []byte) error {
	w, err := conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	if _, err := w.Write(picture); err != nil {
		return err
	}
	return w.Close()
}

// appendFrameHeader encodes f's message head: a 4-byte big-endian length
// and the JSON header; the picture follows.
func appendFrameHeader(buf []byte, f *PreviewFrame, dropped int64, now time.Time) []byte {
	h := LiveFrameHeader{TaskId: f.TaskID, Source: f.Source, Key: f.Key, Seq: f.Seq, Width: f.Width, Height: f.Height,
		CapturedMs: unixMs(f.Captured), ProcessedMs: unixMs(f.Processed), SentMs: unixMs(now), ContentType: f.ContentType,
		Objects: f.Objects, Dropped: dropped}
	if h.Objects == nil {
		h.Objects = []PreviewObject{}
	}
	hb, _ := json.Marshal(h) // plain fields: cannot fail
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(hb)))
	return append(buf, hb...)
}

func unixMs(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMicro()) / 1000
}
