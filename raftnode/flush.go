package raftnode

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tally-db/tally/engine/agg"
	etable "github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/siddhiql"
)

// Store is the shared rollup store as the flusher and queries use it (store.Rollups
// implements it).
type Store interface {
	Ensure(ctx context.Context, def *agg.Def) error
	Upsert(ctx context.Context, def *agg.Def, d siddhiql.Duration, shard string, rows []*agg.Row) (int, error)
	Read(ctx context.Context, def *agg.Def, d siddhiql.Duration, start, end int64) ([]agg.ShardRow, error)
	Purge(ctx context.Context, def *agg.Def, d siddhiql.Duration, shard string, cutoff int64) (int64, error)
}

// TableStore is the shared store's side of `@store(type='rdbms')` tables (store.Tables
// implements it). A Store without it mirrors no tables.
type TableStore interface {
	EnsureTable(ctx context.Context, sd *etable.StoreDef) error
	WriteTable(ctx context.Context, sd *etable.StoreDef, shard string, index uint64, c *etable.Changes) (etable.Written, error)
}

// ErrBacklog: the shared store has been unreachable long enough that the rows waiting to be
// flushed passed Config.MaxUnflushedRows; ingest resumes by itself once the store is back.
var ErrBacklog = errors.New("raftnode: shared store unavailable and the flush backlog is full")

// flushState is the leader-side flusher's bookkeeping. Only the flush goroutine writes it,
// except the atomics, which Ingest and Status read.
type flushState struct {
	// since is the log index through which rows are known to be in the store.
	since uint64
	// ensured remembers definitions whose tables exist.
	ensured map[*agg.Def]bool
	// tablesEnsured remembers mirrored tables that exist (flushtable.go).
	tablesEnsured map[*etable.StoreDef]bool
	// lastPurge is when each aggregation last purged, by definition.
	lastPurge map[*agg.Def]time.Time
	// failing is set while the store refuses writes; lastErr says why.
	failing atomic.Bool
	mu      sync.Mutex
	lastErr error
	// now asks for a flush at once (a snapshot was taken).
	now chan struct{}
	// unflushed is the flush backlog as last counted (unflushedRows): the aggregation rows
	// changed after the replicated flushed index.
	unflushed atomic.Int64
}

// capture is one chunk of a flush: the rows last changed after since and at or before
// upto, copied under the FSM lock, and (in a round's first chunk) the mirrored tables'
// changes.
type capture struct {
	index  uint64 // the applied index the rows and tables reflect
	upto   uint64 // the chunk's bound: the flushed index it replicates once written
	shard  string
	aggs   []capturedAgg
	tables []capturedTable
	rows   int // aggregation rows captured
}

type capturedAgg struct {
	def  *agg.Def
	rows map[siddhiql.Duration][]*agg.Row
}

// capture copies, with aggs, the rows changed in (since, upto] and, with tables, the
// mirrored tables' changes.
func (n *Node) capture(since, upto uint64, aggs, tables bool) capture {
	c := capture{upto: upto}
	n.fsm.Read(func(e fsm.View) {
		c.index = n.fsm.AppliedIndex()
		if aggs {
			c.captureAggs(e, since, upto)
		}
		if tables {
			c.captureTables(e)
		}
	})
	// ShardID reads the FSM's catalog, without the lock; a shard ID never changes once set.
	c.shard, _ = n.fsm.ShardID()
	return c
}

// captureAggs copies, under the FSM read lock, every aggregation's rows changed in
// (since, upto].
func (c *capture) captureAggs(e fsm.View, since, upto uint64) {
	for _, a := range e.Apps() {
		for _, def := range a.Aggregations() {
			st, _ := a.Aggregation(def.Name)
			changed := st.ChangedIn(since, upto)
			if len(changed) == 0 {
				continue
			}
			ca := capturedAgg{def: def, rows: map[siddhiql.Duration][]*agg.Row{}}
			for d, rows := range changed {
				c.rows += len(rows)
				cp := make([]*agg.Row, len(rows))
				for i, r := range rows {
					cp[i] = r.Clone()
				}
				ca.rows[d] = cp
			}
			c.aggs = append(c.aggs, ca)
		}
	}
}

// planChunks cuts the rows changed after since into chunks of at most FlushChunkRows rows
// (a single log index's rows may make a larger one: a chunk never splits an index) and
// returns each chunk's upper bound, ascending, and how many rows they hold; the last bound
// is the applied index, so a round that writes every chunk replicates it, as a single write
// did. Rows only leave a chunk while the round goes on (a row changed again moves past the
// applied index), so no chunk grows past its count here.
func (n *Node) planChunks(since uint64) (bounds []uint64, total int) {
	counts := map[uint64]int{}
	var applied uint64
	n.fsm.Read(func(e fsm.View) {
		applied = n.fsm.AppliedIndex()
		for _, a := range e.Apps() {
			for _, def := range a.Aggregations() {
				st, _ := a.Aggregation(def.Name)
				st.ChangedCounts(since, counts)
			}
		}
	})
	indexes := slices.Sorted(maps.Keys(counts))
	rows := 0
	for i, idx := range indexes {
		rows += counts[idx]
		total += counts[idx]
		if i+1 < len(indexes) && rows+counts[indexes[i+1]] > n.cfg.FlushChunkRows {
			bounds = append(bounds, idx)
			rows = 0
		}
	}
	if applied > since {
		bounds = append(bounds, applied)
	}
	return bounds, total
}

// unflushedRows is the live flush backlog: the aggregation rows changed after the group's
// replicated flushed index, as the engine counts them on apply.
func (n *Node) unflushedRows() int64 {
	var rows int
	n.fsm.Read(func(e fsm.View) {
		for _, a := range e.Apps() {
			for _, def := range a.Aggregations() {
				st, _ := a.Aggregation(def.Name)
				rows += st.Unflushed()
			}
		}
	})
	return int64(rows)
}

// flushLoop writes changed rows to the store while this replica leads, every FlushInterval
// and whenever a snapshot is taken, in chunks, replicating the flushed index after each so
// every replica can drop what the store now holds.
func (n *Node) flushLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.FlushInterval)
	defer t.Stop()
	backoff := n.cfg.FlushInterval
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.flush.now:
		}
		if !n.IsLeader() {
			n.flush.since = 0
			n.flush.failing.Store(false)
			continue
		}
		if n.readyTerm.Load() != n.raft.CurrentTerm() {
			// A new leader first applies its predecessors' entries, the flushed index among
			// them, so that it resumes after the last chunk they replicated.
			continue
		}
		err := n.flushOnce()
		n.flush.unflushed.Store(n.unflushedRows())
		if err != nil {
			if !n.flush.failing.Swap(true) {
				n.logger.Error("flush to the shared store failed; rows stay in memory and the flush is retried", "err", err)
			} else {
				n.logger.Debug("flush still failing", "err", err)
			}
			n.metrics.flushErrors.Add(1)
			n.flush.mu.Lock()
			n.flush.lastErr = err
			n.flush.mu.Unlock()
			// Back off, but never longer than 5 s, so a recovered store is noticed soon.
			backoff = min(backoff*2, 5*time.Second)
			t.Reset(backoff)
			continue
		}
		n.metrics.flushLastOK.Store(time.Now().UnixNano())
		if n.flush.failing.Swap(false) {
			n.logger.Info("shared store reachable again; backlog flushed")
		}
		backoff = n.cfg.FlushInterval
		t.Reset(backoff)
	}
}

// flushOnce writes every row changed since the last replicated flush, chunk by chunk
// (planChunks), and after each chunk proposes KindFlushed with the chunk's bound, so a
// backlog is never captured whole and a new leader resumes after the last chunk that
// replicated. A failure leaves the rest to the next attempt: upserts are idempotent and
// fenced by each row's index, so a chunk written twice, or late by a deposed leader,
// changes nothing.
func (n *Node) flushOnce() error {
	shard, replicated := n.fsm.ShardID()
	if shard == "" {
		return nil // the leader replicates the shard ID first (watchLeadership)
	}
	since := max(n.flush.since, replicated)
	// No overall deadline: a large backlog (after a store outage, or many new keys) takes
	// as long as it takes, and a deadline would make every attempt start over and never
	// finish. Each statement is bounded by the driver's own timeouts; Close cancels.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	bounds, rows := n.planChunks(since)
	for i, upto := range bounds {
		if i > 0 && !n.IsLeader() {
			return nil // the next leader resumes after the last chunk replicated
		}
		// The first chunk writes the tables' changes as of its capture, which is at or past
		// every bound of the round: each chunk's KindFlushed forgets only changes written.
		// Without changed rows the round is the tables' alone: no pass over the groups.
		if err := n.flushChunk(ctx, n.capture(since, upto, rows > 0, i == 0)); err != nil {
			return err
		}
		since = upto
		n.flush.unflushed.Store(n.unflushedRows())
	}
	n.purge(ctx, shard)
	return nil
}

// flushChunk writes one chunk and replicates its bound as the flushed index.
func (n *Node) flushChunk(ctx context.Context, c capture) error {
	written := 0
	for _, ca := range c.aggs {
		if !n.flush.ensured[ca.def] {
			if err := n.cfg.Store.Ensure(ctx, ca.def); err != nil {
				return fmt.Errorf("prepare tables of %s: %w", ca.def.Name, err)
			}
			n.flush.ensured[ca.def] = true
		}
		for _, d := range ca.def.Durations {
			rows := ca.rows[d]
			if len(rows) == 0 {
				continue
			}
			k, err := n.cfg.Store.Upsert(ctx, ca.def, d, c.shard, rows)
			if err != nil {
				return fmt.Errorf("flush chunk through index %d: %w", c.upto, err)
			}
			n.metrics.flushRows.Add(uint64(k))
			written += k
		}
	}
	tablesWritten, err := n.flushTables(ctx, c)
	if err != nil {
		return err
	}
	_, replicated := n.fsm.ShardID()
	if (c.rows == 0 && !tablesWritten) || c.upto <= replicated {
		// Nothing new in the store: no entry needed. Rows flushed while their bucket was
		// open are dropped by the FSM at the tick after they close. (Rows the fence turned
		// away count as flushed: the store holds them at their index or a later one.)
		return nil
	}
	if _, err := n.propose(ctx, &fsm.Command{Kind: fsm.KindFlushed, Time: n.stamp(), Index: c.upto}); err != nil {
		return fmt.Errorf("replicate flushed index %d: %w", c.upto, err)
	}
	n.flush.since = c.upto
	n.logger.Debug("flushed rows", "rows", written, "through_index", c.upto)
	return nil
}

// purge deletes, per aggregation with @purge enabled and at most once per its interval,
// this shard's rows older than each granularity's retention. Errors are logged: purging is
// retried at the next interval and never blocks flushing or another table.
func (n *Node) purge(ctx context.Context, shard string) {
	var defs []*agg.Def
	n.fsm.Read(func(e fsm.View) {
		for _, a := range e.Apps() {
			defs = append(defs, a.Aggregations()...)
		}
	})
	now := time.Now()
	for _, def := range defs {
		p := def.Purge
		last, seen := n.flush.lastPurge[def]
		if !seen {
			// As in Siddhi, the first purge runs one interval after the aggregation starts.
			n.flush.lastPurge[def] = now
			continue
		}
		if !p.Enable || now.Sub(last) < time.Duration(p.IntervalMillis)*time.Millisecond {
			continue
		}
		n.flush.lastPurge[def] = now
		if !n.flush.ensured[def] {
			if err := n.cfg.Store.Ensure(ctx, def); err != nil {
				n.logger.Warn("purge skipped: tables not ready", "aggregation", def.Name, "err", err)
				continue
			}
			n.flush.ensured[def] = true
		}
		for _, d := range def.Durations {
			keep, ok := p.Retention[d]
			if !ok || keep == siddhiql.RetainAll {
				continue
			}
			cutoff := now.UnixMilli() - keep
			deleted, err := n.cfg.Store.Purge(ctx, def, d, shard, cutoff)
			if err != nil {
				n.logger.Warn("purge failed; retried at the next interval", "aggregation", def.Name, "granularity", d.String(), "err", err)
				continue
			}
			if deleted > 0 {
				n.logger.Info("purged old rows", "aggregation", def.Name, "granularity", d.String(), "shard", shard, "rows", deleted, "before", cutoff)
			}
		}
	}
}

// backlogError reports ErrBacklog when the store is failing and the rows changed since the
// last successful flush passed the bound.
func (n *Node) backlogError() error {
	if n.cfg.Store == nil || !n.flush.failing.Load() {
		return nil
	}
	rows := n.unflushedRows()
	n.flush.unflushed.Store(rows)
	if rows <= int64(n.cfg.MaxUnflushedRows) {
		return nil
	}
	n.flush.mu.Lock()
	last := n.flush.lastErr
	n.flush.mu.Unlock()
	return fmt.Errorf("%w: %d rows wait to be flushed (bound %d); last error: %v", ErrBacklog, n.flush.unflushed.Load(), n.cfg.MaxUnflushedRows, last)
}

// ensureShard replicates the configured shard ID when the group has none yet, and reports a
// mismatch when it has another.
func (n *Node) ensureShard(ctx context.Context) error {
	shard, _ := n.fsm.ShardID()
	switch {
	case n.cfg.ShardID == "" || shard == n.cfg.ShardID:
		return nil
	case shard != "":
		return fmt.Errorf("%w: the group's shard ID is %q but this node is configured with %q", fsm.ErrShardMismatch, shard, n.cfg.ShardID)
	}
	res, err := n.propose(ctx, &fsm.Command{Kind: fsm.KindShard, Time: n.stamp(), Text: n.cfg.ShardID})
	if err != nil {
		return err
	}
	if res.Err == nil {
		n.logger.Info("shard ID replicated", "shard_id", n.cfg.ShardID)
	}
	return res.Err
}

// ShardID is the group's replicated shard ID ("" until the first leader set it).
func (n *Node) ShardID() string {
	s, _ := n.fsm.ShardID()
	return s
}
