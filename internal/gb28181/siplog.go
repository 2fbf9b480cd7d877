package gb28181

import (
	"context"
	"log/slog"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// quietHandler is the handler sipgo's layers log through: everything at
// debug level and string values cut to 200 bytes. sipgo logs a datagram it
// cannot parse at error level with the whole datagram, so garbage from the
// network would otherwise flood the platform's log.
type quietHandler struct{ h slog.Handler }

func (q quietHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return q.h.Enabled(ctx, slog.LevelDebug)
}

func (q quietHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, slog.LevelDebug, "sip: "+r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindString && len(a.Value.String()) > 200 {
			a.Value = slog.StringValue(a.Value.String()[:200] + "…")
		}
		nr.AddAttrs(a)
		return true
	})
	return q.h.Handle(ctx, nr)
}

func (q quietHandler) WithAttrs(as []slog.Attr) slog.Handler { return quietHandler{q.h.WithAttrs(as)} }
func (q quietHandler) WithGroup(n string) slog.Handler       { return quietHandler{q.h.WithGroup(n)} }

// newUA returns a sipgo user agent whose layers log quietly to log.
func newUA(log *slog.Logger, name, host string) (*sipgo.UserAgent, *slog.Logger, error) {
	quiet := slog.New(quietHandler{log.Handler()})
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	return ua, quiet, err
}
