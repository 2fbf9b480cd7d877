package apiconfig

import (
	"errors"
	"flag"
)

// Live limits the console's live view: each stream carries every frame a
// task processes (a few hundred kB a frame at 720p), so an operator bounds
// how many this server sends at once, and how many one project may take.
type Live struct {
	// MaxViewers bounds the streams this server serves at once (0: no limit).
	MaxViewers int `yaml:"max_viewers"`
	// MaxViewersPerProject bounds one project's streams on this server (0:
	// no limit).
	MaxViewersPerProject int `yaml:"max_viewers_per_project"`
}

// DefaultLive returns the live view defaults.
func DefaultLive() Live { return Live{MaxViewers: 64, MaxViewersPerProject: 16} }

// RegisterFlags binds the fields to flags prefixed "api.live.".
func (c *Live) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxViewers, "api.live.max-viewers", c.MaxViewers, "live view streams this server serves at once (0: no limit)")
	fs.IntVar(&c.MaxViewersPerProject, "api.live.max-viewers-per-project", c.MaxViewersPerProject, "live view streams one project may hold on this server (0: no limit)")
}

// Validate checks the configuration.
func (c Live) Validate() error {
	if c.MaxViewers < 0 || c.MaxViewersPerProject < 0 || c.MaxViewers > 100000 || c.MaxViewersPerProject > 100000 {
		return errors.New("api.live.max_viewers, max_viewers_per_project: must be between 0 and 100000")
	}
	return nil
}
