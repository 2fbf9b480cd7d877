package push

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pushv1 "github.com/tianshu-ai/tianshu/api/push/v1"
)

// RegisterGRPC adds the tianshu.push.v1.Push service to a gRPC server.
func (s *Service) RegisterGRPC(gs grpc.ServiceRegistrar) {
	pushv1.RegisterPushServer(gs, &grpcPush{s: s})
}

// GRPCServer returns a gRPC server with the Push service registered; serve
// it on a listener of its own (or behind h2c on the main port).
func (s *Service) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	gs := grpc.NewServer(opts...)
	s.RegisterGRPC(gs)
	return gs
}

type grpcPush struct {
	pushv1.UnimplementedPushServer
	s *Service
}

func credsFromMD(ctx context.Context) Credentials {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return Credentials{SecretID: get(MetaSecretID), Timestamp: get(MetaTimestamp), Expires: get(MetaExpires), Signature: get(MetaSignature)}
}

func grpcError(err error) error {
	switch {
	case errors.Is(err, ErrAuth):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, ErrBusyElsewhere):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrChanged), errors.Is(err, ErrReplaced):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, errAckedUnseen):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrStopped):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// errAckedUnseen ends a stream whose client acknowledged events it cannot
// have received yet.
var errAckedUnseen = errors.New("push: acknowledged events not yet sent on the stream; ack the seq of a received event")

// Subscribe implements pushv1.PushServer.
func (g *grpcPush) Subscribe(req *pushv1.SubscribeRequest, stream grpc.ServerStreamingServer[pushv1.Event]) error {
	ctx := stream.Context()
	sub, err := g.s.authenticate(ctx, req.GetSubscriptionId(), ChannelGRPC, credsFromMD(ctx))
	if err != nil {
		return grpcError(err)
	}
	// The session's bus handler queues each event for this goroutine, the
	// stream's only sender. The window bounds what is queued, so queueing
	// never blocks the handler: a client that stops reading holds up this
	// goroutine's Send, never the session's end. Only acknowledgements of
	// events not yet received could overfill it.
	ready := make(chan *pending, g.s.cfg.StreamInFlight)
	ss, err := g.s.openSession(ctx, sub, ChannelGRPC, req.GetFromSeq(), g.s.cfg.StreamInFlight, func(p *pending) error {
		select {
		case ready <- p:
			return nil
		default:
			return errAckedUnseen
		}
	})
	if err != nil {
		return grpcError(err)
	}
	defer ss.end(errors.New("client disconnected"))
	for {
		select {
		case p := <-ready:
			if err := stream.Send(&pushv1.Event{Seq: p.m.Seq, Id: p.id, Json: p.m.Data}); err != nil {
				return err
			}
		case <-ss.ctx.Done():
			return grpcError(context.Cause(ss.ctx))
		case <-ctx.Done():
			return grpcError(ctx.Err())
		}
	}
}

// Ack implements pushv1.PushServer.
func (g *grpcPush) Ack(ctx context.Context, req *pushv1.AckRequest) (*pushv1.AckResponse, error) {
	cred, err := g.s.verify(ctx, req.GetSubscriptionId(), credsFromMD(ctx))
	if err != nil {
		return nil, grpcError(err)
	}
	ss := g.s.session(req.GetSubscriptionId())
	if ss == nil || !owns(cred, ss.sub) {
		return nil, status.Error(codes.NotFound, "push: no stream of this subscription is open on this server; ack over the Subscribe call's connection")
	}
	return &pushv1.AckResponse{Acked: uint32(ss.ack(req.GetSeq()))}, nil
}
