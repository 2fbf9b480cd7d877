package device

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/tianshu-ai/tianshu/internal/function"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
)

// mqttDriver subscribes to a broker topic where AI cameras push events and
// snapshots (MQTT 3.1.1, Eclipse Paho). Each message's payload (JSON, or a
// string when it is not JSON) goes through an optional Starlark script —
// main(input) with input {"topic", "payload"} — that returns an event
// {"type", "data", "snapshot" (base64 JPEG)}, a list of them, or None to skip
// the message. Without a script the payload itself is the event: its "type"
// (default "message"), its "snapshot", and the rest as data.
//
// Address: tcp://host:1883 (also ssl://, ws://).
// Options: topic (required; wildcards allowed), qos (0-2, default 0),
// script, client_id (default tianshu-<device id>), timeout (connect,
// default 10s), snapshot_frames (bool: also deliver snapshots as frames).
type mqttDriver struct{}

func init() { Register("mqtt", mqttDriver{}) }

var mqttOptions = []Option{
	{Name: "topic", Type: "string", Required: true, Description: "Topic to subscribe to; wildcards allowed."},
	{Name: "qos", Type: "integer", Default: 0, Min: num(0), Max: num(2), Description: "MQTT quality of service."},
	{Name: "script", Type: "text", Description: "Starlark main(input) turning {topic, payload} into an event, a list of them, or None."},
	{Name: "client_id", Type: "string", Description: "MQTT client id; empty: tianshu-<device id>."},
	{Name: "timeout", Type: "duration", Default: "10s", Description: "Connect timeout (100ms to 5m)."},
	{Name: "snapshot_frames", Type: "boolean", Default: false, Description: "Also deliver event snapshots as frames."},
}

func (mqttDriver) Spec() DriverSpec {
	return DriverSpec{Description: "Subscribes to a broker topic where AI cameras push events and snapshots.",
		Fields:  []Option{address("The broker, tcp://host:1883 (also ssl://, ws://, wss://)."), fieldUsername, fieldPassword, fieldFps, fieldWidth},
		Options: mqttOptions}
}

func (mqttDriver) Validate(cfg Config) error {
	u, err := url.Parse(cfg.Address)
	if err != nil || u.Host == "" {
		return fieldErr("Address", "must be a broker URL such as tcp://host:1883")
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fieldErr("Address", "scheme must be tcp, ssl, ws or wss")
	}
	if err := cfg.checkOptions(optionNames(mqttOptions)...); err != nil {
		return err
	}
	if topic, err := cfg.optString("topic", ""); err != nil {
		return err
	} else if topic == "" {
		return fieldErr("Options.topic", "required")
	}
	if _, err := cfg.optInt("qos", 0, 0, 2); err != nil {
		return err
	}
	if _, err := cfg.optString("client_id", ""); err != nil {
		return err
	}
	if _, err := cfg.optBool("snapshot_frames", false); err != nil {
		return err
	}
	if _, err := cfg.optDuration("timeout", 10*time.Second, 100*time.Millisecond, 5*time.Minute); err != nil {
		return err
	}
	_, err = mqttScript(cfg)
	return err
}

func mqttScript(cfg Config) (*function.Program, error) {
	src, err := cfg.optString("script", "")
	if err != nil || src == "" {
		return nil, err
	}
	p, err := function.Compile("device-"+cfg.ID, src, function.Limits{})
	if err != nil {
		return nil, fieldErr("Options.script", "%v", err)
	}
	return p, nil
}

func mqttClient(env *Env, cfg Config, timeout time.Duration, lost func(error)) mqtt.Client {
	clientID, _ := cfg.optString("client_id", "")
	if clientID == "" {
		clientID = "tianshu-" + cfg.ID
	}
	addr, user, pass := cfg.credentials()
	addr = strings.Replace(addr, "mqtt://", "tcp://", 1)
	opts := mqtt.NewClientOptions().AddBroker(addr).SetClientID(clientID).
		SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(timeout).SetWriteTimeout(timeout).SetKeepAlive(30 * time.Second).
		SetOrderMatters(true) // events keep the order the device sent them in
	if env.Outbound != nil {
		opts.SetCustomOpenConnectionFn(mqttOpen(env.Outbound, timeout))
	}
	if lost != nil {
		opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost(err) })
	}
	return mqtt.NewClient(opts)
}

// mqttConnect connects, classifying the broker's refusal.
func mqttConnect(ctx context.Context, c mqtt.Client, timeout time.Duration) error {
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout + time.Second):
		return statusErrf(ReasonTimeout, "mqtt connect: no answer in %v", timeout)
	}
	if err := tok.Error(); err != nil {
		switch {
		case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), errors.Is(err, packets.ErrorRefusedNotAuthorised):
			return statusErrf(ReasonAuthFailed, "mqtt connect: %v", err)
		}
		if r := classifyNetErr(err); r != ReasonError {
			return statusErrf(r, "mqtt connect: %w", err)
		}
		if strings.Contains(err.Error(), "connection refused") {
			return statusErrf(ReasonUnreachable, "mqtt connect: %v", err)
		}
		return statusErrf(ReasonError, "mqtt connect: %v", err)
	}
	return nil
}

func (mqttDriver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	timeout, _ := cfg.optDuration("timeout", 10*time.Second, 100*time.Millisecond, 5*time.Minute)
	cfg.Options = withOption(cfg.Options, "client_id", fmt.Sprintf("tianshu-probe-%s-%s", cfg.ID, newCnonce()[:8]))
	c := mqttClient(env, cfg, timeout, nil)
	if err := mqttConnect(ctx, c, timeout); err != nil {
		return ProbeResult{}, err
	}
	defer c.Disconnect(100)
	topic, _ := cfg.optString("topic", "")
	return ProbeResult{Online: true, Info: map[string]any{"broker": cfg.Address, "topic": topic}}, nil
}

func (mqttDriver) Open(_ context.Context, env *Env, cfg Config, sink Sink) (Source, error) {
	prog, err := mqttScript(cfg)
	if err != nil {
		return nil, err
	}
	timeout, _ := cfg.optDuration("timeout", 10*time.Second, 100*time.Millisecond, 5*time.Minute)
	topic, _ := cfg.optString("topic", "")
	qos, _ := cfg.optInt("qos", 0, 0, 2)
	frames, _ := cfg.optBool("snapshot_frames", false)
	log := env.Logger.With("device", cfg.ID, "driver", "mqtt")
	return startStream(env, cfg, sink, func(ctx context.Context, em *emitter) error {
		lost := make(chan error, 1)
		c := mqttClient(env, cfg, timeout, func(err error) {
			select {
			case lost <- err:
			default:
			}
		})
		if err := mqttConnect(ctx, c, timeout); err != nil {
			return err
		}
		defer c.Disconnect(250)
		handle := func(_ mqtt.Client, m mqtt.Message) {
			evs, err := mapMQTTMessage(ctx, prog, m.Topic(), m.Payload())
			if err != nil {
				env.m.errors.WithLabelValues(cfg.Driver, "script").Inc()
				log.Warn("mqtt message not mapped", "topic", m.Topic(), "err", err)
				return
			}
			for _, ev := range evs {
				ev.Time = em.now()
				if frames && ev.Snapshot != nil {
					if f, err := jpegFrame(ev.Snapshot, cfg.Width); err == nil {
						f.Time = ev.Time
						em.frame(f)
					}
				}
				em.event(ev)
			}
		}
		sub := c.Subscribe(topic, byte(qos), handle)
		select {
		case <-sub.Done():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(timeout + time.Second):
			return statusErrf(ReasonTimeout, "mqtt subscribe: no answer in %v", timeout)
		}
		if err := sub.Error(); err != nil {
			return statusErrf(ReasonBadResponse, "mqtt subscribe %s: %v", topic, err)
		}
		if st, ok := sub.(*mqtt.SubscribeToken); ok {
			for _, code := range st.Result() {
				if code == 0x80 {
					return statusErrf(ReasonAuthFailed, "mqtt subscribe %s: refused by the broker", topic)
				}
			}
		}
		em.online()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lost:
			return statusErrf(ReasonStreamEnded, "mqtt connection lost: %v", err)
		}
	}), nil
}

// mapMQTTMessage turns one message into events, through the script when
// there is one.
func mapMQTTMessage(ctx context.Context, prog *function.Program, topic string, payload []byte) ([]Event, error) {
	var body any
	if err := json.Unmarshal(payload, &body); err != nil {
		body = string(payload)
	}
	out := body
	if prog != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v, err := prog.Call(ctx, map[string]any{"topic": topic, "payload": body}, nil)
		if err != nil {
			return nil, err
		}
		out = v
	}
	var items []any
	switch v := out.(type) {
	case nil:
		return nil, nil
	case []any:
		items = v
	default:
		items = []any{v}
	}
	evs := make([]Event, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			if prog != nil {
				return nil, fmt.Errorf("script result must be a dict, a list of dicts or None, got %T", it)
			}
			m = map[string]any{"value": it}
		}
		ev, err := eventFromMap(m, prog != nil)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// eventFromMap reads {"type", "data", "snapshot"}; a raw payload (not a
// script's result) is its own data, less the snapshot.
func eventFromMap(m map[string]any, scripted bool) (Event, error) {
	ev := Event{Type: "message"}
	if t, ok := m["type"].(string); ok && t != "" {
		ev.Type = t
	}
	if s, ok := m["snapshot"]; ok && s != nil {
		var data []byte
		switch x := s.(type) {
		case string:
			b, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				return ev, fmt.Errorf("snapshot is not base64: %w", err)
			}
			data = b
		case []byte:
			data = x
		default:
			return ev, fmt.Errorf("snapshot must be a base64 string, got %T", s)
		}
		if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
			return ev, errors.New("snapshot is not a JPEG")
		}
		ev.Snapshot = data
	}
	if scripted {
		switch d := m["data"].(type) {
		case map[string]any:
			ev.Data = d
		case nil:
			ev.Data = map[string]any{}
		default:
			ev.Data = map[string]any{"value": d}
		}
		return ev, nil
	}
	ev.Data = make(map[string]any, len(m))
	for k, v := range m {
		if k != "snapshot" {
			ev.Data[k] = v
		}
	}
	return ev, nil
}

// mqttOpen connects to a broker through the outbound policy, replacing
// Paho's own connection code, which would use a proxy from the environment
// (hiding the broker from the policy). Websockets are dialled by Paho's
// websocket library: their host is resolved and checked first, and the
// library resolves it again, the DNS-rebinding gap of child processes.
func mqttOpen(p *netpolicy.Policy, timeout time.Duration) mqtt.OpenConnectionFunc {
	return func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		d := p.Guard(&net.Dialer{Timeout: timeout})
		host := uri.Host
		switch uri.Scheme {
		case "tcp", "mqtt":
			if uri.Port() == "" {
				host = net.JoinHostPort(uri.Hostname(), "1883")
			}
			return d.DialContext(ctx, "tcp", host)
		case "ssl", "tls", "mqtts":
			if uri.Port() == "" {
				host = net.JoinHostPort(uri.Hostname(), "8883")
			}
			return (&tls.Dialer{NetDialer: d, Config: o.TLSConfig}).DialContext(ctx, "tcp", host)
		case "ws", "wss":
			if err := p.CheckResolved(ctx, uri); err != nil {
				return nil, err
			}
			u := *uri
			u.User = nil
			noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
			return mqtt.NewWebsocket(u.String(), o.TLSConfig, timeout, o.HTTPHeaders, &mqtt.WebsocketOptions{Proxy: noProxy})
		}
		return nil, fmt.Errorf("mqtt: unsupported scheme %q", uri.Scheme)
	}
}
