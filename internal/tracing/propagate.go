package tracing

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tianshu-ai/tianshu/internal/event"
)

// HTTPTransport returns rt, or, when on, rt wrapped to send the
// traceparent of each request's context (when it holds a span), so an
// algorithm endpoint or any HTTP service the platform calls continues
// the trace.
func HTTPTransport(rt http.RoundTripper, on bool) http.RoundTripper {
	if !on {
		return rt
	}
	return transport{rt}
}

type transport struct{ rt http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if tp := TraceParent(req.Context()); tp != "" && req.Header.Get(event.HeaderTraceParent) == "" {
		req = req.Clone(req.Context())
		req.Header.Set(event.HeaderTraceParent, tp)
	}
	return t.rt.RoundTrip(req)
}

// GRPCClientOptions are the dial options that put the traceparent of each
// call's context into its metadata (key traceparent), unary and streams.
func GRPCClientOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(outgoing(ctx), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(outgoing(ctx), desc, cc, method, opts...)
		}),
	}
}

func outgoing(ctx context.Context) context.Context {
	if tp := TraceParent(ctx); tp != "" {
		return metadata.AppendToOutgoingContext(ctx, event.HeaderTraceParent, tp)
	}
	return ctx
}

// FromGRPC returns ctx carrying the remote parent named by the incoming
// call's traceparent metadata, if any.
func FromGRPC(ctx context.Context) context.Context {
	if v := metadata.ValueFromIncomingContext(ctx, event.HeaderTraceParent); len(v) > 0 {
		return Remote(ctx, v[0])
	}
	return ctx
}
