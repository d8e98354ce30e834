package raftnode

import (
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// NewTCPTransport returns the Raft transport of group over the mux's shared port.
//
// Pipelined replication is off (MaxRPCsInFlight 1: each AppendEntries waits for its
// answer). hashicorp/raft's pipeline can deadlock when a follower refuses an append (its
// log differs, as after a leader change or while a new replica catches up): the decoder
// stops reading answers while the sender may still push one more request, which then
// waits forever. Replication to that follower stops for good while its heartbeats go on,
// so no election repairs it, and shutting the node down hangs. Synchronous appends carry
// the same batched entries, and the library's own measurements find pipelining of little
// use with batching.
func NewTCPTransport(m *Mux, group uint32, logger *slog.Logger) raft.Transport {
	if logger == nil {
		logger = slog.Default()
	}
	hlog := hclog.FromStandardLogger(slog.NewLogLogger(logger.With("component", "raft-net", "group", group).Handler(), slog.LevelInfo),
		&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Info})
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          m.Layer(group),
		MaxPool:         3,
		MaxRPCsInFlight: 1,
		Timeout:         2 * time.Second,
		Logger:          hlog,
	})
}
