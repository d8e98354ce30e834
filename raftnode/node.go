package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
)

// Errors returned by Node; test with errors.Is.
var (
	// ErrNotLeader: this replica is not the group's leader; nothing was proposed.
	ErrNotLeader = errors.New("raftnode: not leader")
	// ErrNoLeader: the group has no known leader right now; retry later.
	ErrNoLeader = errors.New("raftnode: no leader known")
	// ErrUnknownOutcome: the proposal was made but leadership was lost before it was
	// known to commit. It may still be applied: retry with the same producer seq.
	ErrUnknownOutcome = errors.New("raftnode: outcome unknown, leadership lost")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("raftnode: node closed")
	// ErrStoreTables: an app's tables in the shared store cannot be created or used.
	ErrStoreTables = errors.New("raftnode: the app's tables in the shared store are not usable")
)

// Node is one replica of one partition group: a *raft.Raft, its stores and its FSM, plus the
// leader-side group committer and ticker. All methods are safe for concurrent use.
type Node struct {
	cfg       Config
	logger    *slog.Logger
	raft      *raft.Raft
	fsm       *fsm.FSM
	trans     raft.Transport
	logStore  LogStore // the Raft log and stable store
	storeKind string   // which: LogStoreWAL or LogStoreBolt
	logs      raft.LogStore

	reqs     chan *request
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
	stampMu  sync.Mutex
	lastTime int64
	// readyTerm is the term in which this leader's barrier completed: linearizable reads
	// are served only once the leader has committed an entry of its own term.
	readyTerm atomic.Uint64
	observer  *raft.Observer
	obsCh     chan raft.Observation
	flush     flushState
	deliver   deliverState
	// promoteNow wakes the promotion loop (a join).
	promoteNow chan struct{}
	metrics    *nodeMetrics
}

// Open starts the replica on trans (a TCP transport from NewTCPTransport, or raft's
// in-memory one in tests). With Config.Bootstrap and no existing state it forms a new
// single-voter cluster.
func Open(cfg Config, trans raft.Transport) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "raftnode", "group", cfg.Group)
	fcfg := fsm.DefaultConfig()
	fcfg.GroupID, fcfg.AggTimeZone, fcfg.Logger = cfg.Group, cfg.AggTimeZone, logger
	fcfg.GeoIP = cfg.GeoIP
	flushNow := make(chan struct{}, 1)
	fcfg.OnSnapshot = func() {
		select {
		case flushNow <- struct{}{}:
		default:
		}
	}
	if cfg.MaxProducers > 0 {
		fcfg.MaxProducers = cfg.MaxProducers
	}
	if cfg.ProducerTTL > 0 {
		fcfg.ProducerTTL = cfg.ProducerTTL.Milliseconds()
	}
	fcfg.MaxKeys = cfg.MaxKeys
	if cfg.RetainOutputs > 0 {
		fcfg.RetainForSubscribers = cfg.RetainOutputs
	}
	if cfg.MaxUndelivered > 0 {
		fcfg.MaxUndelivered = cfg.MaxUndelivered
	}
	if cfg.DeliveryRecordInterval == 0 {
		cfg.DeliveryRecordInterval = DefaultConfig().DeliveryRecordInterval
	}
	f, err := fsm.New(fcfg)
	if err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	if err := SecureDir(cfg.DataDir, logger); err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	logStore, storeKind, err := OpenLogStore(cfg.DataDir, cfg.LogStore, cfg.WALSegmentBytes)
	if err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	logs, err := raft.NewLogCache(512, logStore)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raftnode: log cache: %w", err)
	}
	hlog := hclog.FromStandardLogger(slog.NewLogLogger(logger.Handler(), slog.LevelInfo), &hclog.LoggerOptions{Name: "raft", Level: hclog.Info})
	nm := newNodeMetrics()
	snaps, err := newPrivateSnapshots(cfg.DataDir, cfg.SnapshotsRetained, hlog, logger)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raftnode: snapshot store in %s: %w", cfg.DataDir, err)
	}
	snaps.persisted = func(d time.Duration) { nm.snapshot.Observe(d.Seconds()) }
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true
	// Only Close shuts Raft down. With ShutdownOnRemove Raft would shut itself down when
	// a configuration without this node commits, and Close's own Shutdown would then
	// return at once, without waiting for Raft's goroutines, and close the log store
	// under them ("failed to save current term: database not open"). A removed replica
	// stays up, outside its group, until the node closes it.
	rc.ShutdownOnRemove = false
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	if cfg.Bootstrap {
		existing, err := raft.HasExistingState(logs, logStore, snaps)
		if err != nil {
			logStore.Close()
			return nil, fmt.Errorf("raftnode: inspect existing state: %w", err)
		}
		if !existing {
			boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
			if err := raft.BootstrapCluster(rc, logs, logStore, snaps, trans, boot); err != nil {
				logStore.Close()
				return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
			}
			logger.Info("bootstrapped a new cluster", "id", cfg.ID, "raft_addr", trans.LocalAddr())
		}
	}
	r, err := raft.NewRaft(rc, f, logs, logStore, snaps, trans)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("raftnode: start raft: %w", err)
	}
	logger.Info("opened replica", "dir", cfg.DataDir, "raft_log_store", storeKind)
	n := &Node{cfg: cfg, logger: logger, raft: r, fsm: f, trans: trans, logStore: logStore, storeKind: storeKind, logs: logs,
		reqs: make(chan *request, 1024), stop: make(chan struct{}), obsCh: make(chan raft.Observation, 16),
		promoteNow: make(chan struct{}, 1), metrics: nm}
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.observer)
	n.flush.ensured, n.flush.lastPurge, n.flush.now = map[*agg.Def]bool{}, map[*agg.Def]time.Time{}, flushNow
	n.wg.Add(5)
	go n.promoteLoop()
	go n.deliverLoop()
	go n.watchLeadership()
	go n.commitLoop()
	go n.tickLoop()
	if cfg.Store != nil {
		n.wg.Add(1)
		go n.flushLoop()
	}
	return n, nil
}

// Close shuts the replica down: a leader first hands leadership to another voter (bounded
// by ctx), then Raft stops and the stores close.
func (n *Node) Close(ctx context.Context) error {
	if n.closed.Swap(true) {
		return nil
	}
	if n.raft.State() == raft.Leader && len(n.voters()) > 1 {
		f := n.raft.LeadershipTransfer()
		if err := waitFuture(ctx, f); err != nil {
			n.logger.Warn("leadership transfer on shutdown failed", "err", err)
		} else {
			n.logger.Info("handed leadership over before shutting down")
		}
	}
	close(n.stop)
	n.raft.DeregisterObserver(n.observer)
	err := n.raft.Shutdown().Error()
	n.wg.Wait()
	if c, ok := n.trans.(interface{ Close() error }); ok {
		err = errors.Join(err, c.Close())
	}
	return errors.Join(err, n.logStore.Close())
}

func (n *Node) voters() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []raft.Server
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, s)
		}
	}
	return out
}

// watchLeadership logs leader changes and, on becoming leader, commits a barrier so that
// reads are served only once this leader has applied everything before its term.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	leaderCh := n.raft.LeaderCh()
	for {
		select {
		case <-n.stop:
			return
		case o := <-n.obsCh:
			lo := o.Data.(raft.LeaderObservation)
			if lo.LeaderID != "" {
				n.metrics.leaderChanges.Add(1)
			}
			n.logger.Info("leader changed", "leader_id", string(lo.LeaderID), "leader_addr", string(lo.LeaderAddr), "term", n.raft.CurrentTerm())
		case isLeader := <-leaderCh:
			if !isLeader {
				n.readyTerm.Store(0)
				continue
			}
			term := n.raft.CurrentTerm()
			// A barrier still queued when Raft shuts down is never answered: wait for it
			// or for Close, whichever comes first.
			barrier := make(chan error, 1)
			go func(f raft.Future) { barrier <- f.Error() }(n.raft.Barrier(n.cfg.ApplyTimeout))
			var err error
			select {
			case err = <-barrier:
			case <-n.stop:
				return
			}
			if err != nil {
				n.logger.Warn("barrier after winning the election failed", "term", term, "err", err)
				continue
			}
			n.readyTerm.Store(term)
			n.logger.Info("leader ready", "term", term, "applied_index", n.fsm.AppliedIndex())
			if err := n.ensureShard(context.Background()); err != nil {
				n.logger.Error("cannot replicate this group's shard ID", "err", err)
			}
		}
	}
}

// IsLeader reports whether this replica is the group's leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's server ID and Raft address, or ErrNoLeader.
func (n *Node) Leader() (id, raftAddr string, err error) {
	addr, sid := n.raft.LeaderWithID()
	if addr == "" {
		return "", "", ErrNoLeader
	}
	return string(sid), string(addr), nil
}

// FSM is the replica's state machine (for reads and tests).
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// ID is this node's server ID.
func (n *Node) ID() string { return n.cfg.ID }

// Group is the partition group's ID.
func (n *Node) Group() uint32 { return n.cfg.Group }

// stamp returns the leader's time for a new entry: Config.Clock (wall-clock) ms, never going
// back.
func (n *Node) stamp() int64 {
	n.stampMu.Lock()
	defer n.stampMu.Unlock()
	clock := n.cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	now := clock().UnixMilli()
	if now < n.lastTime {
		now = n.lastTime
	}
	n.lastTime = now
	return now
}

// propose encodes cmd, appends it through Raft and waits for it to apply here.
func (n *Node) propose(ctx context.Context, cmd *fsm.Command) (*fsm.ApplyResult, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	if n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	data, err := cmd.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("raftnode: encode command: %w", err)
	}
	f := n.raft.Apply(data, n.timeout(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return nil, err
	}
	res, ok := f.Response().(*fsm.ApplyResult)
	if !ok {
		return nil, fmt.Errorf("raftnode: unexpected apply response %T", f.Response())
	}
	return res, nil
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return n.cfg.ApplyTimeout
}

// waitFuture waits for a raft future or ctx, translating raft's errors once.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, ctx.Err())
	case err := <-done:
		switch {
		case err == nil:
			return nil
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return ErrNotLeader
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout):
			return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return ErrClosed
		}
		return fmt.Errorf("raftnode: %w", err)
	}
}

// Deploy replicates an app and returns its name and log index. The text is checked against
// the current state first (syntax, types, stream conflicts), then against this node's
// configuration (checkApp: sink targets, the store's limits) and, with a shared store, its
// tables are prepared (a Siddhi table that Tally cannot write is refused with the SQL that
// migrates it), so a refused app never reaches the log.
func (n *Node) Deploy(ctx context.Context, text string) (string, uint64, error) {
	var app *engine.App
	var err error
	n.fsm.Read(func(e fsm.View) { app, err = e.CheckDeploy(text) })
	if err != nil {
		return "", 0, err
	}
	if err := n.checkApp(app); err != nil {
		return "", 0, err
	}
	if err := PrepareStore(ctx, n.cfg, app); err != nil {
		return "", 0, err
	}
	res, err := n.propose(ctx, &fsm.Command{Kind: fsm.KindDeploy, Time: n.stamp(), Text: text})
	if err != nil {
		return "", 0, err
	}
	return app.Name, res.Index, res.Err
}

// Undeploy removes an app from every replica. An unknown app is refused before proposing.
func (n *Node) Undeploy(ctx context.Context, name string) (uint64, error) {
	if !n.fsm.Catalog().HasApp(name) {
		return 0, fmt.Errorf("%w: %s", engine.ErrUnknownApp, name)
	}
	res, err := n.propose(ctx, &fsm.Command{Kind: fsm.KindUndeploy, Time: n.stamp(), Text: name})
	if err != nil {
		return 0, err
	}
	return res.Index, res.Err
}

// tickLoop appends a tick every TickInterval while this replica leads.
func (n *Node) tickLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if n.raft.State() != raft.Leader {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.TickInterval*2)
			if _, err := n.propose(ctx, &fsm.Command{Kind: fsm.KindTick, Time: n.stamp()}); err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrClosed) {
				n.logger.Warn("tick failed", "err", err)
			}
			cancel()
		}
	}
}
