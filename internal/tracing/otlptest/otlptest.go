// Package otlptest is an OTLP trace receiver for tests. It stands in for
// an OpenTelemetry Collector (none is packaged here): it serves the OTLP
// collector's own trace service, over gRPC and over HTTP (protobuf
// bodies at /v1/traces), with the protocol's official Go types, and keeps
// every span it receives.
package otlptest

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Receiver is a running OTLP trace receiver.
type Receiver struct {
	coltracepb.UnimplementedTraceServiceServer

	// GRPCURL and HTTPURL are the endpoints to give an exporter
	// (http:// scheme: plain text).
	GRPCURL, HTTPURL string

	mu    sync.Mutex
	spans []*tracepb.Span
	// instances are the service.instance.id of each span's resource (the
	// process that sent it), by span.
	instances map[*tracepb.Span]string
	// Requests counts export requests by protocol ("grpc", "http").
	requests map[string]int
}

// Start runs a receiver until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{requests: map[string]int{}, instances: map[*tracepb.Span]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	hs := httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(hs.Close)
	r.GRPCURL, r.HTTPURL = "http://"+ln.Addr().String(), hs.URL
	return r
}

// Export implements the OTLP gRPC trace service.
func (r *Receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.take("grpc", req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// serveHTTP implements OTLP/HTTP with protobuf bodies.
func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	var in coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &in)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.take("http", &in)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *Receiver) take(protocol string, req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[protocol]++
	for _, rs := range req.GetResourceSpans() {
		var instance string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.instance.id" {
				instance = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
			for _, s := range ss.GetSpans() {
				r.instances[s] = instance
			}
		}
	}
}

// Instance returns the service.instance.id of the resource s came with:
// which process sent it.
func (r *Receiver) Instance(s *tracepb.Span) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.instances[s]
}

// Requests returns how many export requests came over protocol.
func (r *Receiver) Requests(protocol string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[protocol]
}

// Trace returns the spans received of trace id (hex).
func (r *Receiver) Trace(id string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out = append(out, s)
		}
	}
	return out
}

// Spans returns every span received.
func (r *Receiver) Spans() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// Forget drops the spans received so far: a benchmark's receiver would
// otherwise hold every span of its run, and the garbage collector would
// scan them all on each cycle of whatever runs next.
func (r *Receiver) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans, r.instances = nil, map[*tracepb.Span]string{}
}
