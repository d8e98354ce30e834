package raftnode

import (
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// NewTCPTransport returns the Raft transport of group over the mux's shared port.
func NewTCPTransport(m *Mux, group uint32, logger *slog.Logger) raft.Transport {
	if logger == nil {
		logger = slog.Default()
	}
	hlog := hclog.FromStandardLogger(slog.NewLogLogger(logger.With("component", "raft-net", "group", group).Handler(), slog.LevelInfo),
		&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Info})
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  m.Layer(group),
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  hlog,
	})
}
