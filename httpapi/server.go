package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-db/tally/console"
	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// Group is what the API needs of one partition group's local replica. *raftnode.Node
// implements it.
type Group interface {
	Ingest(ctx context.Context, parts []fsm.Part) (*raftnode.IngestResult, error)
	Deploy(ctx context.Context, text string) (string, uint64, error)
	Undeploy(ctx context.Context, name string) (uint64, error)
	Read(ctx context.Context, c raftnode.Consistency, minIndex uint64, fn func(fsm.View)) error
	MemoryRows(ctx context.Context, c raftnode.Consistency, minIndex uint64, app, query string) (*agg.Plan, []agg.ShardRow, error)
	Join(ctx context.Context, id, raftAddr string) error
	Remove(ctx context.Context, id string) error
	Status() raftnode.Status
	Ready() bool
	IsLeader() bool
	// StateHash is the applied index and the hash of the FSM state at that index.
	StateHash() (uint64, string, error)
	// Transfer hands the leadership to voter to (any voter when empty) and returns the new
	// leader's ID once known (raftnode.Node.Transfer).
	Transfer(ctx context.Context, to string) (string, error)
}

// Clock is a node's skewable leader clock (*raftnode.OffsetClock): the offset it adds to
// the wall clock when stamping entries.
type Clock interface {
	Offset() time.Duration
	SetOffset(d time.Duration) (previous time.Duration)
}

// StoreReader reads rows of every shard from the shared store (store.Rollups).
type StoreReader interface {
	Read(ctx context.Context, def *agg.Def, d siddhiql.Duration, start, end int64) ([]agg.ShardRow, error)
}

// Resolver finds the HTTP address of the node at a Raft address (raftnode.FetchMeta,
// cached).
type Resolver interface {
	HTTPAddr(ctx context.Context, raftAddr string) (string, error)
}

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// NodeID is this node's ID, reported in status.
	NodeID string
	// MaxBodyBytes caps a request body; larger ones get 413. Default 16 MiB.
	MaxBodyBytes int64
	// ForwardTimeout bounds a request forwarded to a leader; default 30s.
	ForwardTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the API's metrics; nil means a new registry.
	Registry *prometheus.Registry
	// Profiling serves Go's profiles under /debug/pprof/ (off by default).
	Profiling bool
	// DialContext opens the connections of requests to other nodes (forwarding, fan-out,
	// rows of other groups), a DialMap's say; the URL and Host stay the other node's HTTP
	// address. nil dials that address directly.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Clock, when set, is the leader clock shared by this node's groups, skewed through
	// /v1/debug/clock (tally serve --fault-injection). nil answers 404 there.
	Clock Clock
	// TLSClient, when set, makes requests to other nodes (forwarding, fan-out, rows of
	// other groups) use HTTPS with this configuration (security.TLS.ClientConfig, which
	// presents this node's certificate), and redirects name https:// URLs. nil: plain HTTP.
	TLSClient *tls.Config
	// Cluster, when set, is the node's cluster map: joins register with it, apps are
	// recorded in it before the groups deploy them, and /v1/cluster/map and
	// /v1/cluster/nodes/{id}/drain answer from it.
	Cluster Cluster
	// NodeCredentials, when set, is called on every request this node sends to another
	// node, to prove it comes from a node (security.ClusterKey.SetHeader). nil adds
	// nothing (with mutual TLS the client certificate is the proof).
	NodeCredentials func(*http.Request)
	// NodeIdentity reports whether a request comes from a node of the cluster: a client
	// certificate verified against the cluster CA, or a valid cluster key header
	// (security.IsNode, security.ClusterKey.Valid). nil means no node identity is
	// configured.
	NodeIdentity func(*http.Request) bool
	// Limits bounds what requests may hold of the node (see Limits); zero fields mean the
	// defaults.
	Limits Limits
	// Users, when set, turns on users and permissions (tally serve --auth, see auth.go):
	// every route but /healthz and /readyz then needs credentials and a permission. nil
	// leaves the API open.
	Users Users
	// StreamDefs, when set, gives the streams' definitions ingest decodes and routes by
	// (node.Node: the catalog of the cluster map's apps, known whether or not this node
	// hosts a replica); nil reads them from this node's replicas (a node without one passes
	// requests to a leader undecoded).
	StreamDefs StreamDefs
	// GeoIPSHA256 is the SHA-256 of the node's --geoip-db file, shown in status so
	// operators can check every node has the same one; empty without a database.
	GeoIPSHA256 string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 16 << 20, ForwardTimeout: 30 * time.Second}
}

// forwardIdleConns bounds the idle connections kept to other nodes for forwarding.
const forwardIdleConns = 1024

// Server serves Tally's HTTP API for one node, which hosts a replica of every group.
type Server struct {
	cfg     Config
	groups  []Group // indexed by group ID
	store   StoreReader
	router  *partition.Router
	res     Resolver
	logger  *slog.Logger
	client  *http.Client
	scheme  string // of other nodes' URLs: "http" or "https"
	metrics *metrics
	mux     chi.Router

	subsMu   sync.Mutex
	subsDone chan struct{} // closed by CloseSubscriptions
	subsOpen int           // open subscriptions, bounded by Limits.MaxSubscribers; guarded by subsMu

	stateHashes stateHashCache // /v1/debug/state

	cluster Cluster // nil: no cluster map (tests of the API alone)

	ing *ingester // the ingest route (route.go)
}

// New returns a Server over the node's replicas, one per group, indexed by group ID. store
// may be nil (queries then read memory only).
func New(cfg Config, groups []Group, store StoreReader, res Resolver) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultConfig().MaxBodyBytes
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = DefaultConfig().ForwardTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, groups: groups, cluster: cfg.Cluster, store: store, router: partition.NewRouter(len(groups)), res: res,
		logger: cfg.Logger.With("component", "httpapi"),
		client: &http.Client{Timeout: cfg.ForwardTimeout,
			// Redirects are answered to the caller, never followed here.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	// Forwarded requests from many concurrent clients go to one or two leaders: keep
	// enough idle connections per node to reuse them all (the default keeps two, so every
	// other forwarded request would open and close a TCP connection).
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = forwardIdleConns, forwardIdleConns
	if cfg.DialContext != nil {
		t.DialContext = cfg.DialContext
	}
	s.scheme = "http"
	if cfg.TLSClient != nil {
		t.TLSClientConfig, s.scheme = cfg.TLSClient, "https"
		t.ForceAttemptHTTP2 = false // nodes serve HTTP/1.1
	}
	s.client.Transport = t
	if cfg.NodeCredentials != nil {
		s.client.Transport = credentialed{next: t, set: cfg.NodeCredentials}
	}
	s.metrics = newMetrics(cfg.Registry, groups, s.logger, s.openSubscriptions)
	cfg.Registry.MustRegister(mapCollector{groups: groups, cluster: cfg.Cluster})
	var defs StreamDefs = replicaDefs(groups)
	if cfg.StreamDefs != nil {
		// The map's catalog first (every node has it), then the replicas: a deploy reaches
		// the replicas it was acknowledged by before another node's copy of the map.
		defs = eitherDefs{cfg.StreamDefs, defs}
	}
	s.ing = newIngester(s, defs)
	s.mux = s.routes()
	return s
}

// credentialed adds a node's credentials to every request it sends.
type credentialed struct {
	next http.RoundTripper
	set  func(*http.Request)
}

func (c credentialed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change its caller's request
	c.set(r)
	return c.next.RoundTrip(r)
}

func (s *Server) subsClosed() <-chan struct{} {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.subsDone == nil {
		s.subsDone = make(chan struct{})
	}
	return s.subsDone
}

func (s *Server) closeSubs() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.subsDone == nil {
		s.subsDone = make(chan struct{})
	}
	select {
	case <-s.subsDone:
	default:
		close(s.subsDone)
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.instrument)
	r.Use(s.authorize)
	r.Post("/v1/streams/{stream}/events", s.handleIngest)
	r.Get("/v1/streams/{stream}/subscribe", s.handleSubscribe)
	r.Get("/v1/sinks", s.handleSinks)
	r.Post("/stores/query", s.handleStoreQuery)
	r.Post("/query", s.handleStoreQuery)
	r.Get("/v1/aggregations/{name}", s.handleAggregation)
	r.Post("/v1/apps", s.handleDeploy)
	r.Get("/v1/apps", s.handleListApps)
	r.Delete("/v1/apps/{name}", s.handleUndeploy)
	r.Post("/v1/cluster/join", s.handleJoin)
	r.Post("/v1/cluster/transfer", s.handleTransfer)
	r.Delete("/v1/cluster/nodes/{id}", s.handleRemove)
	r.Get("/v1/cluster/status", s.handleStatus)
	r.Get("/v1/cluster/map", s.handleMap)
	r.Post("/v1/cluster/nodes/{id}/drain", s.handleDrain)
	r.Post("/v1/internal/apps", s.handleRecordApp)
	r.Delete("/v1/internal/apps/{name}", s.handleForgetApp)
	r.Post("/v1/internal/rows", s.handleRows)
	r.Post("/v1/internal/ingest", s.handleInternalIngest)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.handleReady)
	r.Get("/v1/debug/state", s.handleStateHash)
	r.Get("/v1/debug/clock", s.handleClock)
	r.Post("/v1/debug/clock", s.handleClock)
	r.Handle("/metrics", s.metrics.handler())
	r.Mount("/ui", console.Handler()) // static files, open to all: the API they call checks permissions
	if s.cfg.Profiling {
		r.Mount("/debug/pprof", http.HandlerFunc(pprofHandler))
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
	})
	return r
}

// groupParam reads ?group=; ok is false (and the response written) when it is malformed.
// present is false when the request names no group.
func (s *Server) groupParam(w http.ResponseWriter, r *http.Request) (g int, present, ok bool) {
	v := r.URL.Query().Get("group")
	if v == "" {
		return 0, false, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n >= len(s.groups) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("group %q: this cluster has groups 0 to %d", v, len(s.groups)-1))
		return 0, true, false
	}
	return n, true, true
}

// apiError is the body of every /v1 error.
type apiError struct {
	Error string `json:"error"`
	// Event and Field locate a schema error (event numbers start at 0).
	Event *int   `json:"event,omitempty"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// writeUnavailable answers 503 with Retry-After.
func writeUnavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, msg)
}

// errorStatus maps an error of a group operation to a status and message. Callers forward
// on ErrNotLeader first; one that still arrives here means no leader could be reached.
func errorStatus(err error) (int, string) {
	var perr *siddhiql.Error
	switch {
	// Leadership transfer (before the context errors: a failed wait wraps ctx's error).
	case errors.Is(err, raftnode.ErrNotVoter):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, raftnode.ErrNoOtherVoter), errors.Is(err, raftnode.ErrTransferInProgress):
		return http.StatusConflict, err.Error()
	case errors.Is(err, raftnode.ErrTransferFailed):
		return http.StatusServiceUnavailable, err.Error() + "; retry"
	case isPermanent(err):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, fsm.ErrTooManyProducers):
		return http.StatusTooManyRequests, err.Error()
	case errors.Is(err, agg.ErrTooManyKeys):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, raftnode.ErrNoLeader), errors.Is(err, raftnode.ErrNotLeader):
		return http.StatusServiceUnavailable, "no leader is known for the group right now; retry shortly"
	case errors.Is(err, raftnode.ErrUnknownOutcome):
		return http.StatusServiceUnavailable, "the outcome is unknown (leadership changed or the request timed out); retry with the same Producer-Id and Producer-Seq"
	case errors.Is(err, raftnode.ErrBacklog), errors.Is(err, raftnode.ErrStoreRead), errors.Is(err, raftnode.ErrStoreTables),
		errors.Is(err, fsm.ErrSinkBacklog):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, raftnode.ErrClosed):
		return http.StatusServiceUnavailable, "this node is shutting down; retry on another node"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "the request timed out; retry with the same Producer-Id and Producer-Seq"
	case errors.As(err, &perr), errors.Is(err, engine.ErrConflict), errors.Is(err, engine.ErrBadEvent):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, engine.ErrUnknownApp), errors.Is(err, engine.ErrUnknownStream):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, fsm.ErrSeqTooOld):
		return http.StatusConflict, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// groupError answers err.
func (s *Server) groupError(w http.ResponseWriter, err error) {
	code, msg := errorStatus(err)
	if code == http.StatusInternalServerError {
		s.logger.Error("request failed", "err", err)
	}
	if code == http.StatusServiceUnavailable {
		writeUnavailable(w, msg)
		return
	}
	writeError(w, code, msg)
}

func isGroupError(err error) bool {
	if err == nil {
		return false
	}
	code, _ := errorStatus(err)
	return code == http.StatusServiceUnavailable
}
