package httpapi

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	events   prometheus.Counter
}

// newMetrics registers the node's metrics with reg: the API's own, the groups' (read at
// scrape time, see groupCollector), raft's own (raft_*), open subscriptions, and the Go
// runtime's and the process's.
func newMetrics(reg *prometheus.Registry, groups []Group, logger *slog.Logger, subscribers func() int) *metrics {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tally_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tally_http_request_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "tally_ingest_events_total",
			Help: "Events acknowledged by ingest requests served on this node."}),
	}
	reg.MustRegister(m.requests, m.latency, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		groupCollector{groups: groups},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tally_subscribers", Help: "Subscriptions (SSE) open on this node."},
			func() float64 { return float64(subscribers()) }))
	if c := raftMetrics(logger); c != nil {
		reg.MustRegister(c)
	}
	for i, g := range groups {
		labels := prometheus.Labels{"group": strconv.Itoa(i)}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tally_raft_is_leader", Help: "1 when this replica leads its group.", ConstLabels: labels},
				func() float64 {
					if g.IsLeader() {
						return 1
					}
					return 0
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tally_raft_term", Help: "Current Raft term.", ConstLabels: labels},
				func() float64 { return float64(g.Status().Term) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tally_raft_applied_index", Help: "Last log index applied to the FSM.", ConstLabels: labels},
				func() float64 { return float64(g.Status().AppliedIndex) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tally_raft_apply_lag", Help: "Committed entries not yet applied.", ConstLabels: labels},
				func() float64 {
					s := g.Status()
					if s.CommitIndex < s.AppliedIndex {
						return 0
					}
					return float64(s.CommitIndex - s.AppliedIndex)
				}),
		)
	}
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

// Unwrap lets http.ResponseController reach Flush and SetWriteDeadline (subscriptions).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// instrument counts requests and their latency per route pattern.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
