// Package telemetry sets up logging and metrics registration (and, later,
// tracing) for a process. It is a leaf: it imports nothing of Tianshu's, so
// every package may use it.
package telemetry

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a slog logger writing to w in format ("json" or "text")
// at level ("debug", "info", "warn", "error").
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
