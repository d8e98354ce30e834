package raftnode

import (
	"math"
	"sync/atomic"
	"time"
)

// Histogram is a fixed-bucket histogram updated with atomics, so hot paths record into it
// without locks and without depending on a metrics library; the HTTP API turns it into a
// Prometheus histogram at scrape time.
type Histogram struct {
	bounds []float64 // upper bounds, increasing
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// NewHistogram returns a histogram with the given increasing upper bounds (+Inf implied).
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds))}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// HistogramSnapshot is a histogram's state: cumulative counts per upper bound.
type HistogramSnapshot struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64 // upper bound → observations ≤ it
}

// Snapshot reads the histogram. Concurrent observations may make Count slightly differ
// from the last bucket; scrapes tolerate that.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Buckets: make(map[float64]uint64, len(h.bounds))}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		s.Buckets[b] = cum
	}
	s.Count = max(h.count.Load(), cum)
	s.Sum = math.Float64frombits(h.sum.Load())
	return s
}

// Bucket bounds of the node's histograms.
var (
	// latencyBuckets: 0.5 ms to about 16 s.
	latencyBuckets = exponential(0.0005, 2, 16)
	// batchBuckets: 1 to 65,536 events per entry.
	batchBuckets = exponential(1, 2, 17)
)

func exponential(start, factor float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// nodeMetrics are the replica's operational counters, written by its loops and read by
// Metrics. The FSM's own counters (events applied, duplicates) come from fsm.Stats.
type nodeMetrics struct {
	commit        *Histogram // propose → applied on the leader, seconds
	snapshot      *Histogram // snapshot persist time, seconds
	batchEvents   *Histogram // events per ingest entry
	leaderChanges atomic.Uint64
	flushRows     atomic.Uint64
	flushErrors   atomic.Uint64
	flushLastOK   atomic.Int64 // unix nanoseconds of the last successful flush; 0: none yet
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{commit: NewHistogram(latencyBuckets), snapshot: NewHistogram(latencyBuckets),
		batchEvents: NewHistogram(batchBuckets)}
}

// Metrics is a replica's operational state for monitoring.
type Metrics struct {
	// Commit is the time from proposing an ingest entry to its apply on this leader.
	Commit HistogramSnapshot
	// Snapshot is the time to persist a snapshot (taken here or received from a leader).
	Snapshot HistogramSnapshot
	// BatchEvents is the number of events per ingest entry this leader proposed.
	BatchEvents HistogramSnapshot
	// LeaderChanges counts the leaders this replica learnt of.
	LeaderChanges uint64
	// AppliedEvents and Duplicates are the FSM's counters (fsm.Stats).
	AppliedEvents, Duplicates uint64
	// Producers is the size of the dedup table.
	Producers int
	// FlushRows are rows written to the shared store by this replica while leading;
	// FlushErrors the failed flush attempts.
	FlushRows, FlushErrors uint64
	// FlushBacklog is the aggregation rows changed after the replicated flushed index, as
	// the engine counts them, refreshed at every flush chunk and, while the store fails, at
	// every ingest (0 when this replica does not lead).
	FlushBacklog int64
	// FlushLastSuccess is when a flush last succeeded here (zero: never).
	FlushLastSuccess time.Time
	// Sinks are the group's sinks with their delivered counts on this node.
	Sinks []SinkMetrics
}

// SinkMetrics is one sink's backlog and deliveries.
type SinkMetrics struct {
	// Name is STREAM/INDEX (the sink's position among the stream's @sink annotations).
	Name string
	// Backlog is the outputs not yet delivered (replicated position).
	Backlog int
	// Delivered counts the outputs this node delivered while leading.
	Delivered uint64
}

// Metrics reads the replica's counters.
func (n *Node) Metrics() Metrics {
	st := n.fsm.Stats()
	m := Metrics{
		Commit: n.metrics.commit.Snapshot(), Snapshot: n.metrics.snapshot.Snapshot(), BatchEvents: n.metrics.batchEvents.Snapshot(),
		LeaderChanges: n.metrics.leaderChanges.Load(), AppliedEvents: st.Events, Duplicates: st.Duplicates,
		Producers: n.fsm.Producers(), FlushRows: n.metrics.flushRows.Load(), FlushErrors: n.metrics.flushErrors.Load(),
	}
	if n.IsLeader() {
		m.FlushBacklog = n.flush.unflushed.Load()
	}
	if ns := n.metrics.flushLastOK.Load(); ns != 0 {
		m.FlushLastSuccess = time.Unix(0, ns)
	}
	sinks := n.fsm.Sinks()
	n.deliver.mu.Lock()
	defer n.deliver.mu.Unlock()
	for _, s := range sinks {
		name := sinkName(s.Stream, s.Index)
		m.Sinks = append(m.Sinks, SinkMetrics{Name: name, Backlog: s.Undelivered, Delivered: n.deliver.delivered[name]})
	}
	return m
}
