// Package bus is Tianshu's message bus: named topics that keep what is
// published to them, and durable consumers that read a topic at their own
// pace and resume where they stopped.
//
// Roles coordinate only through the store and the bus, so every part that
// outlives a process (task outputs, events for the message gateway) goes
// through here. Backends register by URL scheme (see [Register] and [Open]);
// the NATS JetStream backend in package natsbus serves both the embedded
// default (nats://embedded) and an external cluster. Package bustest holds
// the conformance suite every backend must pass.
//
// Delivery is at least once. A handler that returns nil acknowledges its
// message; one that returns an error has it retried (by the subscription,
// with backoff) until it succeeds or MaxDeliver attempts have been made.
// Handlers must therefore be idempotent; Message.Seq and the caller-chosen
// "id" header are stable across redeliveries and can serve to deduplicate.
package bus

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultURL is the bus a platform uses when none is configured: a NATS
// server with JetStream running inside the process, with no TCP port.
const DefaultURL = "nats://embedded"

// DefaultMaxMessageBytes is the largest Data a backend accepts by default.
// Bigger payloads (images, videos) belong in the blob store, and messages
// carry references to them.
const DefaultMaxMessageBytes = 1 << 20

// HeaderID is the header through which a publisher gives a message a stable
// identity (for example a CloudEvents id). The backend drops a second
// publish with the same id on the same topic within its deduplication
// window (two minutes for NATS) and returns the first one's sequence, so a
// publisher may retry a Publish whose outcome it did not learn. The header
// is delivered to subscribers like any other.
const HeaderID = "id"

// Errors a Bus returns. Callers test for them with errors.Is; each is
// wrapped with the detail that caused it.
var (
	// ErrInvalidTopic means the topic name breaks the rules of ValidateTopic;
	// the caller must fix the name, retrying will not help.
	ErrInvalidTopic = errors.New("bus: invalid topic")
	// ErrInvalidDurable means the durable consumer name breaks the rules of
	// ValidateDurable.
	ErrInvalidDurable = errors.New("bus: invalid durable name")
	// ErrInvalidKey means the ordering key breaks the rules of ValidateKey.
	ErrInvalidKey = errors.New("bus: invalid key")
	// ErrInvalidHeader means a header name or value breaks the rules of
	// ValidateHeader.
	ErrInvalidHeader = errors.New("bus: invalid header")
	// ErrMessageTooLarge means the message is over the backend's size
	// limit; store the payload in the blob store and publish a reference.
	ErrMessageTooLarge = errors.New("bus: message too large")
	// ErrNotFound means the topic or durable consumer does not exist.
	ErrNotFound = errors.New("bus: not found")
	// ErrClosed means the Bus was closed; the caller must open a new one.
	ErrClosed error = &faultSentinel{"bus: closed"}
	// ErrUnavailable means the backend cannot be reached now (the
	// connection is down and the backend keeps reconnecting): retry later.
	// A Publish that fails with it may still have stored the message, as
	// with any failed Publish.
	ErrUnavailable error = &faultSentinel{"bus: unavailable"}
)

// faultSentinel is a sentinel error that tells the API gateway, which
// knows no backend, that the bus cannot serve now: it answers such an
// error ResourceUnavailable naming the bus instead of InternalError.
type faultSentinel struct{ msg string }

func (e *faultSentinel) Error() string { return e.msg }

// Fault names the component and the kind of fault.
func (e *faultSentinel) Fault() (component, kind string) { return "bus", "unavailable" }

// Message is one message as a handler receives it.
type Message struct {
	// Topic is the topic the message was published to.
	Topic string
	// Key is the ordering key given to Publish; may be empty.
	Key string
	// Data is the payload.
	Data []byte
	// Header holds the headers given to Publish; nil when there were none.
	Header map[string]string
	// Seq is the message's position in its topic, starting at 1. It is the
	// same on every delivery, so it can serve to deduplicate.
	Seq uint64
	// Time is when the backend stored the message.
	Time time.Time
	// Attempt counts handler calls for this message, 1 on the first; it
	// grows with in-place retries and with redeliveries after a consumer
	// died or stopped. Treat it as a hint for logs and backoff: a backend
	// may count a redelivery only once per delivery, not per retry.
	Attempt int
}

// Handler processes one message. Returning nil acknowledges it; returning
// an error asks for another attempt after a backoff. ctx is cancelled when
// the subscription stops; a handler that returns because of that does not
// use up an attempt.
type Handler func(ctx context.Context, m Message) error

// SubscribeOptions tunes a subscription. The zero value is usable. The
// start position (StartSeq, StartTime) applies only when Subscribe creates
// the durable consumer; a durable that exists resumes where it stopped.
type SubscribeOptions struct {
	// AckWait is how long the backend waits for a message to be
	// acknowledged before it redelivers it to another subscriber. While a
	// handler runs (or a message waits for an earlier one with the same
	// key) the subscription keeps extending it, so AckWait bounds how long
	// a dead consumer's messages stay stuck, not how long a handler may
	// run. Default 30s.
	AckWait time.Duration
	// MaxInFlight is how many handlers may run at once. Messages with the
	// same key are still handled one after another, in publish order.
	// Default 1.
	//
	// That order holds within one subscription. Subscriptions sharing a
	// durable take messages as they come, without regard to keys, so where
	// per-key order matters run one subscription per durable (scale with
	// MaxInFlight).
	MaxInFlight int
	// Prefetch is how many messages the subscription takes from the
	// backend ahead of its handlers, running or waiting their turn.
	// Default, and for values below MaxInFlight, 4 × MaxInFlight: a little
	// more than one per handler keeps them busy, not much more, so that
	// subscriptions sharing a durable share the work. A subscriber whose
	// handler only hands messages on (a stream to a client) prefetches
	// more with one handler.
	Prefetch int
	// MaxDeliver is how many attempts a message gets before it is given up
	// as dead: it is not delivered again and OnDead is called. Default 10;
	// negative means unlimited.
	MaxDeliver int
	// RetryDelay is the pause before the second attempt; it doubles with
	// every further attempt up to 30s (or RetryDelay if that is larger).
	// Default 100ms.
	RetryDelay time.Duration
	// StartSeq makes a new durable start at this topic sequence.
	StartSeq uint64
	// StartTime makes a new durable start at the first message stored at or
	// after this time. Ignored when StartSeq is set. Without either a new
	// durable starts at the oldest message the topic still holds.
	StartTime time.Time
	// OnDead, if set, is called (from the handler's goroutine) when a
	// message is given up after MaxDeliver attempts, with the last error.
	// Dead messages are also counted in tianshu_bus_dead_total.
	OnDead func(m Message, err error)
	// Untracked makes the backend forget a message once it hands it to a
	// subscription: nothing is acknowledged, and a message whose handler
	// did not finish (the subscription stopped, the process died) is not
	// delivered again; AckWait does not apply. Handler errors are still
	// retried in place up to MaxDeliver. It is for subscribers that keep
	// their own position and re-create the durable from it on every start
	// (push deliverers), which spares the backend a round of
	// acknowledgement work per message. A durable's tracking is fixed when
	// it is created. The backend may keep an untracked durable's position
	// in memory only: after the backend restarts, or after an hour without
	// a running subscription, the durable may be gone and is created again
	// at the start position.
	Untracked bool
}

// Bus publishes to topics and runs durable subscriptions on them.
// Implementations are safe for concurrent use.
type Bus interface {
	// Publish appends data to topic, creating the topic if needed, and
	// returns its sequence once the backend has stored it durably. Messages
	// with the same key are delivered in the order their Publish calls
	// returned. header may carry HeaderID for deduplication. A failed
	// Publish may still have stored the message; retry with a HeaderID to
	// avoid duplicates.
	Publish(ctx context.Context, topic, key string, data []byte, header map[string]string) (seq uint64, err error)
	// Subscribe starts delivering topic's messages to h on behalf of the
	// durable consumer named durable, creating the topic and the durable if
	// needed. Every message is handled by one of the subscriptions that
	// share a durable name, in this process or another. ctx bounds only the
	// setup; the subscription runs until Stop or Close.
	Subscribe(ctx context.Context, topic, durable string, opts SubscribeOptions, h Handler) (Subscription, error)
	// DeleteConsumer forgets a durable consumer and its position. Running
	// subscriptions on it stop receiving messages. It returns an error
	// wrapping ErrNotFound when there is no such durable.
	DeleteConsumer(ctx context.Context, topic, durable string) error
	// DeleteTopic deletes a topic with its messages and durables. It
	// returns an error wrapping ErrNotFound when there is no such topic.
	DeleteTopic(ctx context.Context, topic string) error
	// Ping checks that the backend is reachable and serving now (readiness
	// asks it): nil when it is, an error wrapping ErrUnavailable when the
	// connection is down, ErrClosed after Close. It is cheap enough to
	// call every second.
	Ping(ctx context.Context) error
	// Close stops all subscriptions as Stop does, flushes what is pending
	// and releases the backend (for the embedded one, stops the server
	// after its data is on disk). Later calls return ErrClosed.
	Close() error
}

// Ephemeral is implemented by backends that can also carry messages that
// nobody stores: delivered to whoever listens at that moment, at most once,
// lost when nobody does (NATS core subjects). It serves streams that are
// worth only while someone watches, such as the live view's frames. Use it
// with a type assertion; a backend without it (Kafka) cannot carry them.
type Ephemeral interface {
	// Send hands data to the current listeners of subject (dot-separated
	// tokens of letters, digits, '-' and '_'). It does not wait for them.
	Send(subject string, data []byte) error
	// Listen calls h with every message sent to subject from now on, one
	// at a time, until stop is called.
	Listen(subject string, h func(data []byte)) (stop func(), err error)
}

// Subscription is a running subscription.
type Subscription interface {
	// Stop stops delivery and waits for running handlers to return, after
	// cancelling their context. Messages taken but not acknowledged are
	// handed back to the backend for prompt redelivery; the durable's
	// position is kept, so a later Subscribe with the same name resumes.
	// Stop is idempotent.
	Stop() error
}

// Options are what every backend gets from the process that opens it.
type Options struct {
	// DataDir is the directory an embedded backend keeps its data in (the
	// NATS backend uses DataDir/nats). Backends that talk to a server
	// ignore it.
	DataDir string
	// Logger receives the backend's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the backend's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
}
