package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startTimeout bounds how long the embedded server may take to start; it
// replays its stream files first, which takes a while after a crash.
const startTimeout = 60 * time.Second

// startEmbedded starts a NATS server with JetStream inside the process. It
// listens on no port unless cfg.listen asks for one, so that a single-node
// platform exposes nothing it does not need to; its clients connect
// in-process.
func startEmbedded(cfg config, dataDir string, log *slog.Logger) (*server.Server, error) {
	if dataDir == "" {
		return nil, errors.New("natsbus: nats://embedded needs a data directory (bus.Options.DataDir)")
	}
	storeDir := filepath.Join(dataDir, "nats")
	opts := &server.Options{
		ServerName: "tianshu-embedded",
		JetStream:  true,
		StoreDir:   storeDir,
		DontListen: cfg.listen == "",
		// The process owns its signals; the server must not install
		// handlers for them.
		NoSigs:     true,
		MaxPayload: int32(cfg.maxMsgBytes + headerAllowance),
	}
	if cfg.listen != "" {
		host, port, err := net.SplitHostPort(cfg.listen)
		if err != nil {
			return nil, fmt.Errorf("natsbus: listen=%q: %w", cfg.listen, err)
		}
		opts.Host = host
		opts.Port, err = strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("natsbus: listen=%q: bad port", cfg.listen)
		}
		if opts.Port == 0 {
			// For nats-server 0 means its default port, 4222.
			opts.Port = server.RANDOM_PORT
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsbus: embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLog{log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsbus: embedded server not ready after %v (store %s)", startTimeout, storeDir)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsbus: embedded server started without JetStream (store %s)", storeDir)
	}
	listen := ""
	if cfg.listen != "" {
		listen = srv.ClientURL()
	}
	log.Info("embedded nats server started", "store", storeDir, "listen", listen)
	return srv, nil
}

// ServerLog returns a nats-server logger that routes its printf-style logs
// to l under constant messages, as the embedded bus logs its own server's;
// other servers embedded in the process (the edge link's) use it too.
func ServerLog(l *slog.Logger) server.Logger { return serverLog{l} }

// serverLog routes nats-server's printf-style logs to slog under constant
// messages. Notices (its start-up banner among them) go to debug: the bus
// logs its own one-line summary.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(format string, v ...any) {
	s.l.Debug("nats server notice", "text", fmt.Sprintf(format, v...))
}

func (s serverLog) Warnf(format string, v ...any) {
	s.l.Warn("nats server warning", "text", fmt.Sprintf(format, v...))
}

func (s serverLog) Fatalf(format string, v ...any) {
	s.l.Error("nats server fatal error", "text", fmt.Sprintf(format, v...))
}

func (s serverLog) Errorf(format string, v ...any) {
	s.l.Error("nats server error", "text", fmt.Sprintf(format, v...))
}

func (s serverLog) Debugf(format string, v ...any) {
	s.l.Debug("nats server debug", "text", fmt.Sprintf(format, v...))
}

func (s serverLog) Tracef(format string, v ...any) {
	s.l.Debug("nats server trace", "text", fmt.Sprintf(format, v...))
}
