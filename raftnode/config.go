package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tally-db/tally/engine"
)

// Config configures one group's replica on this node. Start from DefaultConfig.
type Config struct {
	// ID is this node's stable Raft server ID; required.
	ID string
	// Group is the partition group's ID; every Raft structure is keyed by it.
	Group uint32
	// DataDir holds this group's Raft log, stable store and snapshots; required.
	DataDir string
	// Bootstrap makes this replica form a new single-voter cluster if it has no state yet.
	Bootstrap bool
	// AggTimeZone is the engine's aggTimeZone (default GMT).
	AggTimeZone string
	// GeoIP is the node's GeoIP database for the engine's geo: functions (nil: none).
	GeoIP engine.GeoIP

	// HeartbeatTimeout and ElectionTimeout: how long a follower waits without contact
	// before starting an election (Raft randomizes up to twice this). Defaults 400ms and
	// 400ms: a killed leader is replaced well within 2 s on a LAN.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout: how long a leader stays leader without reaching a quorum;
	// default 300ms.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds the delay before followers learn the commit index; default 20ms.
	CommitTimeout time.Duration
	// SnapshotInterval and SnapshotThreshold: check every interval and snapshot when this
	// many entries were applied since the last one. Defaults 30s and 8192.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// TrailingLogs is how many entries are kept after a snapshot; default 10240.
	TrailingLogs uint64
	// SnapshotsRetained is how many snapshots stay on disk; default 2.
	SnapshotsRetained int

	// ApplyTimeout bounds a proposal when the caller's context has no deadline; default 10s.
	ApplyTimeout time.Duration
	// MaxBatchEvents caps the events of one group-commit entry; default 20,000.
	MaxBatchEvents int
	// Linger is how long the group committer waits for more requests after the first one
	// before proposing, while an earlier entry is still in flight (with none in flight it
	// proposes at once); default 1ms. Zero proposes whatever is queued at once.
	Linger time.Duration
	// TickInterval is how often the leader appends a tick so that windows expire and
	// buckets close without events; default 1s.
	TickInterval time.Duration
	// MaxProducers bounds the dedup table (see fsm); default 100,000.
	MaxProducers int
	// ProducerTTL is how long a producer stays in the dedup table after it last applied
	// (fsm.Config.ProducerTTL, in stamped time); default 1h. Every replica must agree.
	ProducerTTL time.Duration
	// MaxKeys bounds each aggregation's distinct group keys (fsm.Config.MaxKeys); default
	// 1,000,000, zero means no limit. Only the leader's value counts.
	MaxKeys int

	// Store is the shared rollup store the leader flushes to and queries read; nil keeps
	// every row in memory (tests, replay).
	Store Store
	// ShardID names this group's rows in the store. The first leader that has one
	// replicates it; after that the group's shard ID never changes, and a node configured
	// with another one logs an error instead of replicating it. Empty means adopt the
	// group's. The flusher waits until the group has one.
	ShardID string
	// FlushInterval is how often the leader flushes changed rows; default 1s.
	FlushInterval time.Duration
	// MaxUnflushedRows bounds the rows held in memory while the store is unreachable; past
	// it ingest is refused with ErrBacklog until the store is back. Default 1,000,000.
	MaxUnflushedRows int
	// LogStore is the Raft log store of a new replica: LogStoreWAL (the default when empty)
	// or LogStoreBolt. A replica keeps the store it was created with: empty opens whichever
	// its data dir holds, and a value naming the other store is an error.
	LogStore string
	// WALSegmentBytes is the size of a new raft-wal segment file (preallocated); default
	// 16 MiB, at least 4 KiB. Raft-wal deletes a compacted log a whole segment at a time, so
	// until a segment fills, a follower that falls behind catches up from the log rather
	// than from a snapshot.
	WALSegmentBytes int
	// FlushChunkRows bounds the rows one flush chunk captures and writes before it
	// replicates its progress (the rows of one log index are never split, so a chunk may
	// hold more when one entry changed more). Default 50,000: a few MiB on the leader, and
	// few enough chunks that the pass over the groups each replica makes when a chunk's
	// progress applies (DropFlushed) stays a small share of the flush.
	FlushChunkRows int

	// RetainOutputs is how many delivered outputs per output stream stay in the replicated
	// outbox for subscribers (fsm.Config.RetainForSubscribers); default 10,000. Every
	// replica must use the same value.
	RetainOutputs int
	// MaxUndelivered bounds each sink's undelivered outputs; past it ingest into the
	// streams that feed the sink is refused (fsm.ErrSinkBacklog, 503). Default 100,000.
	MaxUndelivered int
	// DeliveryRecordInterval is how often at most a sink's delivered position is
	// replicated while outputs flow (KindDelivered); default 100ms. Outputs delivered but not
	// yet recorded are delivered again (same IDs) by the next leader.
	DeliveryRecordInterval time.Duration

	// SinkPolicy is what http sinks may reach (--sink-allow): checked before a deploy is
	// proposed and again on every connection. nil allows every host but link-local ones.
	SinkPolicy *SinkPolicy
	// SMTP is the mail server of email sinks that name none (--smtp-*; deliver_email.go).
	SMTP SMTPConfig

	// Clock is the leader's wall clock for the time it stamps on entries (the only time the
	// FSM sees); nil means time.Now. A stamp never goes back, whatever the clock says. Fault
	// injection shares one OffsetClock between a node's groups to skew it.
	Clock func() time.Time

	// Probe asks a joining node, at its Raft address, for its ID and how far it has
	// applied this group's log (Mux.Probe). Join refuses nodes while it is nil
	// (ErrJoinCheck).
	Probe Prober

	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every tunable at its default.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   400 * time.Millisecond,
		ElectionTimeout:    400 * time.Millisecond,
		LeaderLeaseTimeout: 300 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotsRetained:  2,
		ApplyTimeout:       10 * time.Second,
		MaxBatchEvents:     20000,
		Linger:             time.Millisecond,
		TickInterval:       time.Second,
		MaxProducers:       100000,
		ProducerTTL:        time.Hour,
		MaxKeys:            1_000_000,
		FlushInterval:      time.Second,
		MaxUnflushedRows:   1_000_000,
		FlushChunkRows:     50_000,

		RetainOutputs:          10_000,
		MaxUndelivered:         100_000,
		DeliveryRecordInterval: 100 * time.Millisecond,
	}
}

// Validate checks the configuration, naming the field and the bound.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("raftnode: Config.ID is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("raftnode: Config.DataDir is required"))
	}
	positive := map[string]time.Duration{
		"HeartbeatTimeout": c.HeartbeatTimeout, "ElectionTimeout": c.ElectionTimeout,
		"LeaderLeaseTimeout": c.LeaderLeaseTimeout, "CommitTimeout": c.CommitTimeout,
		"SnapshotInterval": c.SnapshotInterval, "ApplyTimeout": c.ApplyTimeout, "TickInterval": c.TickInterval,
	}
	for _, name := range []string{"HeartbeatTimeout", "ElectionTimeout", "LeaderLeaseTimeout", "CommitTimeout", "SnapshotInterval", "ApplyTimeout", "TickInterval"} {
		if positive[name] <= 0 {
			errs = append(errs, fmt.Errorf("raftnode: Config.%s must be > 0, got %s", name, positive[name]))
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("raftnode: Config.LeaderLeaseTimeout (%s) must not exceed HeartbeatTimeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("raftnode: Config.ElectionTimeout (%s) must not be below HeartbeatTimeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	if c.Store != nil && (c.FlushInterval <= 0 || c.MaxUnflushedRows < 1) {
		errs = append(errs, fmt.Errorf("raftnode: Config.FlushInterval must be > 0 and MaxUnflushedRows >= 1, got %s and %d", c.FlushInterval, c.MaxUnflushedRows))
	}
	if c.Store != nil && c.FlushChunkRows < 1 {
		errs = append(errs, fmt.Errorf("raftnode: Config.FlushChunkRows must be >= 1, got %d", c.FlushChunkRows))
	}
	if c.RetainOutputs < 0 || c.MaxUndelivered < 0 || c.DeliveryRecordInterval < 0 {
		errs = append(errs, fmt.Errorf("raftnode: Config.RetainOutputs, MaxUndelivered and DeliveryRecordInterval must be >= 0 (0 means the default), got %d, %d and %s", c.RetainOutputs, c.MaxUndelivered, c.DeliveryRecordInterval))
	}
	if c.LogStore != "" && c.LogStore != LogStoreWAL && c.LogStore != LogStoreBolt {
		errs = append(errs, fmt.Errorf("raftnode: Config.LogStore must be %q or %q (or empty), got %q", LogStoreWAL, LogStoreBolt, c.LogStore))
	}
	if c.WALSegmentBytes != 0 && (c.WALSegmentBytes < MinWALSegmentBytes || c.WALSegmentBytes > MaxWALSegmentBytes) {
		errs = append(errs, fmt.Errorf("raftnode: Config.WALSegmentBytes must be %d to %d (or 0 for %d), got %d", MinWALSegmentBytes, MaxWALSegmentBytes, DefaultWALSegmentBytes, c.WALSegmentBytes))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("raftnode: Config.Linger must be >= 0, got %s", c.Linger))
	}
	if c.MaxBatchEvents < 1 {
		errs = append(errs, fmt.Errorf("raftnode: Config.MaxBatchEvents must be >= 1, got %d", c.MaxBatchEvents))
	}
	if c.SnapshotThreshold < 1 || c.SnapshotsRetained < 1 {
		errs = append(errs, fmt.Errorf("raftnode: Config.SnapshotThreshold and SnapshotsRetained must be >= 1, got %d and %d", c.SnapshotThreshold, c.SnapshotsRetained))
	}
	return errors.Join(errs...)
}
