package httpapi

import (
	"log/slog"
	"slices"
	"strconv"
	"sync"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
)

// metricsGroup is a group that reports its operational counters (*raftnode.Node).
type metricsGroup interface {
	Metrics() raftnode.Metrics
}

// Descriptions of the metrics read from the groups at scrape time.
var (
	descApplied = prometheus.NewDesc("tally_fsm_applied_events_total",
		"Events applied by this replica's state machine.", []string{"group"}, nil)
	descCommit = prometheus.NewDesc("tally_raft_commit_seconds",
		"Time from proposing an ingest entry to its apply on the leader.", []string{"group"}, nil)
	descLeaderChanges = prometheus.NewDesc("tally_raft_leader_changes_total",
		"Leaders this replica learnt of (elections and transfers).", []string{"group"}, nil)
	descSnapshot = prometheus.NewDesc("tally_raft_snapshot_seconds",
		"Time to persist a snapshot, taken here or received from the leader.", []string{"group"}, nil)
	descFlushRows = prometheus.NewDesc("tally_flush_rows_total",
		"Rollup rows this replica wrote to the shared store while leading.", []string{"group"}, nil)
	descFlushErrors = prometheus.NewDesc("tally_flush_errors_total",
		"Failed flushes to the shared store (each is retried).", []string{"group"}, nil)
	descFlushBacklog = prometheus.NewDesc("tally_flush_backlog_rows",
		"Aggregation rows changed after the replicated flushed index, counted as rows change (refreshed at every flush chunk, and at every ingest while the store is down).", []string{"group"}, nil)
	descFlushLastOK = prometheus.NewDesc("tally_flush_last_success_timestamp_seconds",
		"Unix time of the last successful flush on this replica (absent until one succeeds).", []string{"group"}, nil)
	descSinkBacklog = prometheus.NewDesc("tally_sink_backlog",
		"Outputs not yet delivered to the sink (STREAM/INDEX).", []string{"group", "sink"}, nil)
	descSinkDelivered = prometheus.NewDesc("tally_sink_delivered_total",
		"Outputs this node delivered to the sink while leading its group.", []string{"group", "sink"}, nil)
	descDuplicates = prometheus.NewDesc("tally_dedup_duplicates_total",
		"Batch parts skipped as duplicates (a producer seq applied before).", []string{"group"}, nil)
	descProducers = prometheus.NewDesc("tally_dedup_producers",
		"Producers remembered by the dedup table.", []string{"group"}, nil)
	descBatchEvents = prometheus.NewDesc("tally_ingest_batch_events",
		"Events per ingest entry proposed by the leader (group commit size).", []string{"group"}, nil)
	descKeys = prometheus.NewDesc("tally_aggregation_keys",
		"Distinct group keys held in memory per aggregation, summed over this node's replicas.", []string{"app", "aggregation"}, nil)
)

// groupCollector reads every group's counters at scrape time, so the state machine and
// the hot paths never touch Prometheus.
type groupCollector struct {
	groups []Group
}

// Describe implements prometheus.Collector.
func (c groupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplied, descCommit, descLeaderChanges, descSnapshot, descFlushRows,
		descFlushErrors, descFlushBacklog, descFlushLastOK, descSinkBacklog, descSinkDelivered, descDuplicates,
		descProducers, descBatchEvents, descKeys} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c groupCollector) Collect(ch chan<- prometheus.Metric) {
	type aggKey struct{ app, agg string }
	keys := map[aggKey]int{}
	var order []aggKey
	for i, g := range c.groups {
		gid := strconv.Itoa(i)
		rep, hosted := replicaOf(g)
		if !hosted {
			continue
		}
		if mg, ok := rep.(metricsGroup); ok {
			m := mg.Metrics()
			counter := func(d *prometheus.Desc, v uint64, labels ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{gid}, labels...)...)
			}
			gauge := func(d *prometheus.Desc, v float64, labels ...string) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{gid}, labels...)...)
			}
			histogram := func(d *prometheus.Desc, h raftnode.HistogramSnapshot) {
				ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, h.Buckets, gid)
			}
			counter(descApplied, m.AppliedEvents)
			histogram(descCommit, m.Commit)
			counter(descLeaderChanges, m.LeaderChanges)
			histogram(descSnapshot, m.Snapshot)
			counter(descFlushRows, m.FlushRows)
			counter(descFlushErrors, m.FlushErrors)
			gauge(descFlushBacklog, float64(m.FlushBacklog))
			if !m.FlushLastSuccess.IsZero() {
				gauge(descFlushLastOK, float64(m.FlushLastSuccess.UnixNano())/1e9)
			}
			for _, s := range m.Sinks {
				gauge(descSinkBacklog, float64(s.Backlog), s.Name)
				counter(descSinkDelivered, s.Delivered, s.Name)
			}
			counter(descDuplicates, m.Duplicates)
			gauge(descProducers, float64(m.Producers))
			histogram(descBatchEvents, m.BatchEvents)
		}
		if og, ok := rep.(outboxGroup); ok {
			og.FSM().Read(func(e fsm.View) {
				for _, a := range e.Apps() {
					for _, def := range a.Aggregations() {
						st, ok := a.Aggregation(def.Name)
						if !ok {
							continue
						}
						k := aggKey{a.Name(), def.Name}
						if _, seen := keys[k]; !seen {
							order = append(order, k)
						}
						keys[k] += st.Keys()
					}
				}
			})
		}
	}
	slices.SortFunc(order, func(a, b aggKey) int {
		if a.app != b.app {
			if a.app < b.app {
				return -1
			}
			return 1
		}
		if a.agg < b.agg {
			return -1
		}
		if a.agg > b.agg {
			return 1
		}
		return 0
	})
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(keys[k]), k.app, k.agg)
	}
}

// raftSink receives hashicorp/raft's own metrics (go-metrics is process-wide) and exposes
// them as raft_* families; it is installed once and registered with every Server's
// registry.
var raftSink struct {
	once sync.Once
	sink *gmprom.PrometheusSink
}

// raftMetrics returns the process-wide sink of raft's metrics, installing it on first use;
// nil if it cannot be made.
func raftMetrics(logger *slog.Logger) prometheus.Collector {
	raftSink.once.Do(func() {
		opts := gmprom.DefaultPrometheusOpts
		opts.Name = "tally_raft_metrics_sink"
		opts.Registerer = prometheus.NewRegistry() // registered with each Server's registry instead
		sink, err := gmprom.NewPrometheusSinkFrom(opts)
		if err != nil {
			logger.Warn("raft's own metrics are not exported", "err", err)
			return
		}
		conf := gometrics.DefaultConfig("")
		conf.EnableHostname, conf.EnableRuntimeMetrics, conf.EnableServiceLabel = false, false, false
		if _, err := gometrics.NewGlobal(conf, sink); err != nil {
			logger.Warn("raft's own metrics are not exported", "err", err)
			return
		}
		raftSink.sink = sink
	})
	if raftSink.sink == nil {
		return nil
	}
	return raftSink.sink
}
