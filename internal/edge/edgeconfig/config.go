// Package edgeconfig is the configuration of cloud-edge links
// (internal/edge), a leaf the root config nests. A cloud sets LeafAddr to
// accept edge nodes; an edge box sets Cloud (and JoinToken once).
package edgeconfig

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Buffer policies: what an edge does when its disk buffer is full.
const (
	PolicyDropOldest    = "drop-oldest"    // the oldest buffered records make room
	PolicyStopIngesting = "stop-ingesting" // new records stay local and are not forwarded
)

// Config configures both ends of the cloud-edge link.
type Config struct {
	// LeafAddr is where the cloud accepts edge nodes' TLS leaf node
	// connections (host:port; port 0 picks one); empty: no edge hub.
	LeafAddr string `yaml:"leaf_addr"`
	// LeafAdvertise is the host:port edges dial, told them in the join
	// exchange (default: LeafAddr's bound address).
	LeafAdvertise string `yaml:"leaf_advertise"`
	// Cloud is the cloud's base URL (http(s)://host:port) an edge joins;
	// empty: this process is no edge.
	Cloud string `yaml:"cloud"`
	// JoinToken is the one-time token CreateEdgeNode returned; used once,
	// then the credential it was exchanged for is kept in the data dir.
	// Prefer TIANSHU_JOIN_TOKEN over the flag.
	JoinToken string `yaml:"join_token"`
	// BufferBytes bounds the edge's disk buffer of records not yet
	// forwarded to the cloud.
	BufferBytes int64 `yaml:"buffer_bytes"`
	// BufferPolicy is drop-oldest or stop-ingesting.
	BufferPolicy string `yaml:"buffer_policy"`
	// Heartbeat is how often an edge reports its status to the cloud; a
	// node silent for three heartbeats is offline.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// WatchlistBytes bounds a project's watchlist set on the link: the
	// cloud refuses to send a larger one, an edge to read one (it holds
	// the whole set in memory before applying it).
	WatchlistBytes int64 `yaml:"watchlist_bytes"`
}

// Default returns the defaults: no hub, no edge, a 1 GiB drop-oldest
// buffer, a 5 s heartbeat, watchlist sets of up to 256 MiB.
func Default() Config {
	return Config{BufferBytes: 1 << 30, BufferPolicy: PolicyDropOldest, Heartbeat: 5 * time.Second, WatchlistBytes: 256 << 20}
}

// RegisterFlags binds the fields to edge.* flags; the edge's two
// essentials are --cloud and --join-token.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.LeafAddr, "edge.leaf-addr", c.LeafAddr, "cloud: address accepting edge nodes' TLS leaf connections (host:port, e.g. 0.0.0.0:7422; default: off)")
	fs.StringVar(&c.LeafAdvertise, "edge.leaf-advertise", c.LeafAdvertise, "cloud: host:port edge nodes dial (default: the leaf listener's address)")
	fs.StringVar(&c.Cloud, "cloud", c.Cloud, "edge: base URL of the cloud this edge node joins (default: not an edge)")
	fs.StringVar(&c.JoinToken, "join-token", c.JoinToken, "edge: one-time join token from CreateEdgeNode (prefer TIANSHU_JOIN_TOKEN); unused once joined")
	fs.Int64Var(&c.BufferBytes, "edge.buffer-bytes", c.BufferBytes, "edge: disk buffer of records not yet forwarded to the cloud, in bytes")
	fs.StringVar(&c.BufferPolicy, "edge.buffer-policy", c.BufferPolicy, "edge: when the buffer is full: drop-oldest or stop-ingesting")
	fs.DurationVar(&c.Heartbeat, "edge.heartbeat", c.Heartbeat, "edge: how often the node reports its status to the cloud (offline after three missed)")
	fs.Int64Var(&c.WatchlistBytes, "edge.watchlist-bytes", c.WatchlistBytes, "both: largest watchlist set of a project on the link, in bytes of JSON (cloud: sends no larger set; edge: reads none)")
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.LeafAddr != "" {
		if _, _, err := net.SplitHostPort(c.LeafAddr); err != nil {
			return fmt.Errorf("edge.leaf-addr: %v", err)
		}
	}
	if c.LeafAdvertise != "" {
		if _, _, err := net.SplitHostPort(c.LeafAdvertise); err != nil {
			return fmt.Errorf("edge.leaf-advertise: %v", err)
		}
	}
	if c.Cloud != "" {
		u, err := url.Parse(c.Cloud)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("cloud: %q is not an http(s) URL", c.Cloud)
		}
	}
	if len(c.JoinToken) > 512 {
		return errors.New("join-token: at most 512 bytes")
	}
	if c.BufferBytes < 1<<20 || c.BufferBytes > 1<<40 {
		return errors.New("edge.buffer-bytes: must be between 1 MiB and 1 TiB")
	}
	if c.BufferPolicy != PolicyDropOldest && c.BufferPolicy != PolicyStopIngesting {
		return fmt.Errorf("edge.buffer-policy: %q is not drop-oldest or stop-ingesting", c.BufferPolicy)
	}
	if c.Heartbeat < 100*time.Millisecond || c.Heartbeat > 10*time.Minute {
		return errors.New("edge.heartbeat: must be between 100ms and 10m")
	}
	if c.WatchlistBytes < 1<<20 || c.WatchlistBytes > 4<<30 {
		return errors.New("edge.watchlist-bytes: must be between 1 MiB and 4 GiB")
	}
	return nil
}
