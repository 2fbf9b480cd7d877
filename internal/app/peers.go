package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/logview"
	"github.com/tianshu-ai/tianshu/internal/peers"
	"github.com/tianshu-ai/tianshu/internal/tracing/tracesdk"
)

// platformIDSetting names the settings row of the platform's id: what the
// processes of one platform share, and those of another platform on the
// same NATS do not.
const platformIDSetting = "platform_id"

// startPeers lets this process's memory (recent traces, log lines) be
// read from the others: with roles in several processes, DescribeTrace
// and DescribeLogs ask every process of the platform over the bus's
// ephemeral subjects, scoped by the platform's id. A bus without them
// (Kafka), or a process without a store, shows its own memory only.
func (p *Platform) startPeers(ctx context.Context) error {
	eph, ok := p.Bus.(bus.Ephemeral)
	if !ok || p.DB == nil {
		return nil
	}
	id, err := p.platformID(ctx)
	if err != nil {
		return fmt.Errorf("platform id: %w", err)
	}
	o := peers.Options{Scope: id, Name: p.processName(), Logger: p.log.With("component", "bus"), Registerer: p.Metrics}
	var started []*peers.Peers
	serve := func(topic string, answer peers.Answerer) (*peers.Peers, error) {
		pp, err := peers.Serve(eph, topic, answer, o)
		if err != nil {
			for _, s := range started {
				s.Stop()
			}
			return nil, fmt.Errorf("peers %s: %w", topic, err)
		}
		started = append(started, pp)
		return pp, nil
	}
	if r := p.Tracing.Recent(); r != nil {
		if p.tracePeers, err = serve(tracesdk.PeersTopic, r.Answer); err != nil {
			return err
		}
	}
	if p.logPeers, err = serve(logview.PeersTopic, logview.Answerer(p.Logs, p.processName())); err != nil {
		return err
	}
	p.stops = append(p.stops, namedStop{"peers", func(context.Context) error {
		for _, s := range started {
			s.Stop()
		}
		return nil
	}})
	return nil
}

// platformID reads the platform's id, made by the first process that
// asks.
func (p *Platform) platformID(ctx context.Context) (string, error) {
	var id string
	err := p.DB.QueryRow(ctx, "SELECT value FROM settings WHERE name = ?", platformIDSetting).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	// Another process may insert first: its id wins, read back below.
	_, _ = p.DB.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)", platformIDSetting, hex.EncodeToString(b[:]), p.now().UnixMilli())
	err = p.DB.QueryRow(ctx, "SELECT value FROM settings WHERE name = ?", platformIDSetting).Scan(&id)
	return id, err
}
