// Package node is one Tally node: its Raft port, its replica of the controller group (the
// cluster map), the replicas of the partition groups the map places on it (opened and
// closed at run time), the shared store, the HTTP API, and the loops that reconcile the
// replicas with the map and, on the controller's leader, place and move replicas.
//
// [Open] starts it; [Node.Close] stops every goroutine it started and waits for them.
// cmd/tally maps flags to a [Config]; tests start whole nodes in-process.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/placement"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/store"
)

// Config configures a node. The zero values of the durations take the defaults.
type Config struct {
	ID       string
	HTTPAddr string
	RaftAddr string
	DataDir  string
	// Zone labels the node's failure domain; placement spreads each group over zones.
	Zone string
	// Bootstrap creates the cluster on first start with Groups groups of Replicas replicas.
	Bootstrap bool
	Groups    int
	// GroupsSet: Groups was given explicitly (a restart with another value is refused).
	GroupsSet bool
	Replicas  int
	// Join lists URLs of nodes to join through on first start.
	Join []string
	// Apps are app files deployed at bootstrap.
	Apps []string
	// ShardID names the groups' rows in the shared store (NAME, or NAME-<g> with several
	// groups); ShardIDSet says it was given.
	ShardID    string
	ShardIDSet bool
	// StoreDSN is the shared store (store.Open).
	StoreDSN string
	// DeadNodeTimeout: a node unreachable this long has its replicas re-created elsewhere.
	// Default 5 minutes.
	DeadNodeTimeout time.Duration
	// MaxMovesPerNode bounds the moves a node takes part in at once (placement); 0: 2.
	MaxMovesPerNode int

	// MuxOptions secure the Raft port (TLS, cluster key, connection cap).
	MuxOptions []raftnode.MuxOption
	// Listener wraps the HTTP listener (TLS, connection cap); nil leaves it.
	Listener func(net.Listener) net.Listener
	// HTTPServer builds the HTTP server around the API; nil: a plain http.Server.
	HTTPServer func(http.Handler) *http.Server
	// Client makes this node's own requests to other nodes (join, the cluster's shape).
	Client *http.Client
	// API configures the HTTP API (its security fields set); node sets NodeID and Cluster.
	API httpapi.Config
	// Replica returns the configuration of this node's replica of group g; node fills in
	// ID, Group, DataDir, Bootstrap, ShardID, Store and Probe.
	Replica func(g uint32) raftnode.Config
	// GeoIP is the node's GeoIP database (closed by the caller after Close).
	GeoIP  engine.GeoIP
	Logger *slog.Logger
}

// Node is a running Tally node.
type Node struct {
	cfg    Config
	logger *slog.Logger
	mux    *raftnode.Mux
	httpLn net.Listener
	srv    *http.Server
	api    *httpapi.Server
	ctl    *controller
	store  store.Rollups
	slots  []*slot

	openMu sync.Mutex // opening and closing replicas
	// created is set once this process has created the cluster map: only then may it form
	// (bootstrap) the groups' first replicas.
	created atomic.Bool

	catMu sync.Mutex              // building the catalog
	cat   atomic.Pointer[catalog] // the schemas of the map's apps (catalog.go)
	// appsMu serializes, on the controller's leader, recording apps in the map with the
	// reconciler's changes to the groups' apps (apps.go).
	appsMu   sync.Mutex
	appsBusy atomic.Bool // reconcileApps runs
	// appsRecorded is when this node last recorded an app change another node fans out
	// (Unix nanoseconds).
	appsRecorded atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	failed chan error // a loop that cannot go on (the HTTP server, a shard ID conflict)

	moverState
}

// Open starts a node: it listens, opens its replicas, joins or bootstraps the cluster when
// it has no state yet, and serves the API until Close.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DeadNodeTimeout <= 0 {
		cfg.DeadNodeTimeout = 5 * time.Minute
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 3
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	n := &Node{cfg: cfg, logger: cfg.Logger, failed: make(chan error, 4)}
	n.kickCh, n.lastSeen, n.moveSince = make(chan struct{}, 1), map[string]time.Time{}, map[uint32]time.Time{}
	n.moveSeconds = newMoveSeconds()
	n.appsSeen, n.retireSince = map[uint32]appsCheck{}, map[string]time.Time{}
	cleanup := []func(){}
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(cleanup) {
				f()
			}
		}
	}()
	n.mux, err = raftnode.NewMux(cfg.RaftAddr, raftnode.Meta{ID: cfg.ID, HTTPAddr: cfg.HTTPAddr, RaftAddr: cfg.RaftAddr}, n.logger, cfg.MuxOptions...)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { n.mux.Close() })
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen on HTTP address %s: %w", cfg.HTTPAddr, err)
	}
	cleanup = append(cleanup, func() { n.httpLn.Close() })
	if err := raftnode.SecureDir(cfg.DataDir, n.logger); err != nil {
		return nil, err
	}
	groups, err := n.clusterGroups(ctx)
	if err != nil {
		return nil, err
	}
	if n.store, err = store.Open(ctx, cfg.StoreDSN, n.logger); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { n.store.Close() })
	n.ctl, err = openController(cfg.ID, filepath.Join(cfg.DataDir, "controller"), cfg.Bootstrap,
		raftnode.NewTCPTransport(n.mux, ControllerGroup, n.logger), n.logger)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { _ = n.ctl.Close(context.Background()) })

	n.slots = make([]*slot, groups)
	api := make([]httpapi.Group, groups)
	for g := range groups {
		n.slots[g] = &slot{g: uint32(g), n: n}
		api[g] = n.slots[g]
	}
	n.mux.ServeApplied(func(g uint32) (uint64, bool) {
		if int(g) >= len(n.slots) {
			return 0, false
		}
		if r := n.slots[g].local(); r != nil {
			return r.LogApplied(), true
		}
		return 0, false
	})
	n.mux.ServeLeader(func(g uint32) (string, string) {
		if g == ControllerGroup {
			return n.ctl.Leader()
		}
		if int(g) >= len(n.slots) {
			return "", ""
		}
		return n.slots[g].Leader()
	})

	acfg := cfg.API
	acfg.NodeID, acfg.Cluster, acfg.StreamDefs = cfg.ID, n, n
	if acfg.Registry == nil {
		acfg.Registry = prometheus.NewRegistry()
	}
	if err := acfg.Registry.Register(n.moveSeconds); err != nil {
		return nil, fmt.Errorf("register tally_move_seconds: %w", err)
	}
	if acfg.Logger == nil {
		acfg.Logger = n.logger
	}
	n.api = httpapi.New(acfg, api, n.store, n.mux.Resolver())
	if cfg.HTTPServer != nil {
		n.srv = cfg.HTTPServer(n.api)
	} else {
		n.srv = &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second}
	}
	n.srv.RegisterOnShutdown(n.api.CloseSubscriptions)
	ln := n.httpLn
	if cfg.Listener != nil {
		ln = cfg.Listener(ln)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.fail(fmt.Errorf("HTTP server: %w", err))
		}
	}()
	n.logger.Info("tally node started", "http_addr", cfg.HTTPAddr, "raft_addr", cfg.RaftAddr, "groups", groups,
		"replicas", cfg.Replicas, "zone", cfg.Zone, "data_dir", cfg.DataDir)

	n.openExisting()
	n.wg.Add(3)
	go n.reconcileLoop()
	go n.leaderLoop()
	go n.controlLoop()
	if cfg.Bootstrap {
		n.wg.Add(1)
		go n.bootstrap(groups)
	} else if len(cfg.Join) > 0 {
		if servers, err := n.ctl.Members(); err == nil && len(servers) == 0 {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				if err := n.join(n.ctx); err != nil && n.ctx.Err() == nil {
					n.logger.Error("join failed", "err", err)
				}
			}()
		}
	}
	return n, nil
}

// Failed delivers an error when the node cannot go on (its HTTP server failed, or its
// configuration contradicts the cluster map); the caller then closes it.
func (n *Node) Failed() <-chan error { return n.failed }

func (n *Node) fail(err error) {
	select {
	case n.failed <- err:
	default:
	}
}

// API is the node's HTTP handler.
func (n *Node) API() *httpapi.Server { return n.api }

// Close stops the node: the API stops taking requests, leaders hand their groups over, the
// replicas and the controller stop, and every goroutine has returned.
func (n *Node) Close(ctx context.Context) error {
	n.cancel()
	shutErr := n.srv.Shutdown(ctx)
	n.wg.Wait()
	var errs []error
	var wg sync.WaitGroup
	errsMu := sync.Mutex{}
	n.openMu.Lock()
	for _, s := range n.slots {
		r := s.rep.Swap(nil)
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Close(ctx); err != nil {
				errsMu.Lock()
				errs = append(errs, fmt.Errorf("close group %d: %w", s.g, err))
				errsMu.Unlock()
			}
		}()
	}
	wg.Wait()
	n.openMu.Unlock()
	errs = append(errs, n.ctl.Close(ctx), n.store.Close(), n.mux.Close())
	n.httpLn.Close()
	if shutErr != nil && !errors.Is(shutErr, http.ErrServerClosed) {
		errs = append(errs, shutErr)
	}
	n.logger.Info("stopped")
	return errors.Join(errs...)
}

// Map is this node's copy of the cluster map.
func (n *Node) Map() clustermap.Map {
	m, _ := n.ctl.Map()
	return m
}

// ControllerLeader names the controller group's leader.
func (n *Node) ControllerLeader() (string, string) { return n.ctl.Leader() }

// member is a node of the map as raftnode.Status lists it.
func (n *Node) member(m clustermap.Map, id, suffrage string) raftnode.Member {
	nd, _ := m.Node(id)
	return raftnode.Member{ID: id, RaftAddr: nd.RaftAddr, Voter: suffrage == "voter"}
}

// Register adds a node to the cluster (on the controller leader).
func (n *Node) Register(ctx context.Context, req httpapi.JoinRequest) error {
	if !n.ctl.IsLeader() {
		return raftnode.ErrNotLeader
	}
	meta, err := n.mux.Probe(ctx, req.RaftAddr, ControllerGroup)
	if err != nil {
		return fmt.Errorf("%w: %w", raftnode.ErrJoinCheck, err)
	}
	if meta.ID != req.ID {
		return fmt.Errorf("%w: %s answers as %q, not %q", raftnode.ErrJoinCheck, req.RaftAddr, meta.ID, req.ID)
	}
	m, _ := n.ctl.Map()
	if old, ok := m.Node(req.ID); ok && old.RaftAddr != req.RaftAddr && len(m.Hosts(req.ID)) > 0 {
		return fmt.Errorf("%w: node %s is a member at %s", raftnode.ErrMemberElsewhere, req.ID, old.RaftAddr)
	}
	for _, o := range m.Nodes {
		if o.ID != req.ID && o.RaftAddr == req.RaftAddr {
			return fmt.Errorf("%w: %s is node %s's", raftnode.ErrAddrInUse, req.RaftAddr, o.ID)
		}
	}
	if err := n.ctl.AddMember(ctx, req.ID, req.RaftAddr); err != nil {
		return err
	}
	httpAddr := req.HTTPAddr
	if httpAddr == "" {
		httpAddr = meta.HTTPAddr
	}
	if err := n.ctl.Propose(ctx, clustermap.Register(clustermap.Node{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: httpAddr, Zone: req.Zone})); err != nil {
		return err
	}
	n.logger.Info("node joined the cluster map", "id", req.ID, "raft_addr", req.RaftAddr, "zone", req.Zone)
	n.kick()
	return nil
}

// Drain marks a node draining (on the controller leader).
func (n *Node) Drain(ctx context.Context, id string) error {
	if !n.ctl.IsLeader() {
		return raftnode.ErrNotLeader
	}
	if err := n.ctl.Propose(ctx, clustermap.SetState(id, placement.Draining)); err != nil {
		return err
	}
	n.logger.Info("draining node", "id", id)
	n.kick()
	return nil
}

// removeDir deletes a replica's data once it left its group.
func removeDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %s: %w", dir, err)
	}
	return nil
}
