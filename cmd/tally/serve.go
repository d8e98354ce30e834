package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/security"
	"github.com/tally-db/tally/store"
)

const serveUsage = `usage: tally serve --id ID [--bootstrap | --join URL] [flags]

Runs a Tally node: one replica of the partition group, its Raft port and its HTTP API.
The first node of a cluster starts with --bootstrap (and --app files to deploy); the others
start with --join http://any-node:port (https:// when the nodes serve HTTPS). A restarted
node needs neither: it finds its state in --data-dir.

On an address other than loopback a node needs --auth, --tls-cert, --tls-key and --tls-ca
(or --insecure to run unprotected anyway).

flags:
`

// compile-time checks that the pieces fit.
var (
	_ httpapi.Group    = (*raftnode.Node)(nil)
	_ httpapi.Resolver = (*raftnode.Resolver)(nil)
	_ httpapi.Users    = (*security.Users)(nil)
)

func serveMain(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage); fs.PrintDefaults() }
	cfg, err := loadServeConfig(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tally serve: %v\n", err)
		return 2
	}
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat).With("node", cfg.ID)
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("tally serve stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs a node until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger) error {
	cfg.logIgnored(logger)
	cfg.applyMemoryLimit(os.Getenv, logger)
	var users *security.Users
	if cfg.Auth != "" {
		var err error
		if users, err = security.LoadUsers(cfg.Auth); err != nil {
			return fmt.Errorf("--auth: %w", err)
		}
		logger.Info("users and permissions on", "auth", cfg.Auth, "users", len(users.Names()))
	}
	// dial is how this node connects to other nodes: nil dials their addresses directly.
	dial := cfg.DialMap.Dialer()
	if dial != nil {
		logger.Warn("connections to other nodes are redirected by --dial-map", "dial_map", cfg.DialMap.String())
	}
	sec, err := loadTransport(cfg, dial, logger)
	if err != nil {
		return err
	}
	if warning, _ := cfg.exposure(); warning != "" {
		go warnInsecure(ctx, warning, insecureWarnEvery, logger)
	}
	var clock *raftnode.OffsetClock
	if cfg.FaultInjection {
		clock = &raftnode.OffsetClock{}
		logger.Warn("fault injection is on: POST /v1/debug/clock skews this node's leader clock; not for production")
	}
	mux, err := raftnode.NewMux(cfg.RaftAddr, raftnode.Meta{ID: cfg.ID, HTTPAddr: cfg.HTTPAddr, RaftAddr: cfg.RaftAddr}, logger, sec.muxOptions(cfg.MaxConns)...)
	if err != nil {
		return err
	}
	defer mux.Close()
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP address %s: %w", cfg.HTTPAddr, err)
	}
	defer httpLn.Close()
	if err := secureDataDir(cfg, logger); err != nil {
		return err
	}
	groups, err := clusterGroups(ctx, cfg, sec.client(5*time.Second), logger)
	if err != nil {
		return err
	}
	rollups, err := store.Open(ctx, cfg.StoreDSN, logger)
	if err != nil {
		return err
	}
	defer rollups.Close()
	geo, closeGeo, err := openGeoIP(cfg.GeoIPDB, logger)
	if err != nil {
		return err
	}
	defer closeGeo()

	nodes := make([]*raftnode.Node, groups)
	apiGroups := make([]httpapi.Group, groups)
	shardErr := make(chan error, groups)
	for g := range groups {
		groupDir := filepath.Join(cfg.DataDir, fmt.Sprintf("group-%d", g))
		shard, err := shardToPropose(cfg, groupDir, g, groups)
		if err != nil {
			_ = closeAll(nodes, logger)
			return err
		}
		glog := logger.With("group", g)
		ncfg := nodeConfig(cfg, uint32(g), groupDir, shard, rollups, logger)
		ncfg.Probe = mux.Probe // joining nodes are asked through the mux's dialer
		ncfg.GeoIP = geo
		if clock != nil {
			ncfg.Clock = clock.Now // one clock for every group of the node
		}
		node, err := raftnode.Open(ncfg, raftnode.NewTCPTransport(mux, uint32(g), logger))
		if err != nil {
			_ = closeAll(nodes, logger)
			return err
		}
		nodes[g], apiGroups[g] = node, node
		go func() {
			if err := watchShard(ctx, node, cfg, groupDir, groupShard(cfg, g, groups), glog); err != nil {
				shardErr <- err
			}
		}()
	}
	// The meta channel tells a leader how far this node has applied each group's log: it
	// promotes a joined node to voter once caught up.
	mux.ServeApplied(func(g uint32) (uint64, bool) {
		if int(g) >= len(nodes) {
			return 0, false
		}
		return nodes[g].LogApplied(), true
	})
	resolver := mux.Resolver() // meta lookups dial like the Raft port: map, TLS, cluster key
	acfg := httpapi.DefaultConfig()
	acfg.NodeID, acfg.Logger, acfg.Profiling = cfg.ID, logger, cfg.Pprof
	acfg.Limits = httpapi.Limits{MaxWait: cfg.MaxWait, MaxSubscribers: cfg.MaxSubscribers}
	sec.apiConfig(&acfg)
	if clock != nil {
		acfg.Clock = clock
	}
	if users != nil {
		acfg.Users = users // pprof, when on, is admin-only like every admin route
	}
	if h, ok := geo.(interface{ Hash() string }); ok {
		acfg.GeoIPSHA256 = h.Hash()
	}
	api := httpapi.New(acfg, apiGroups, rollups, resolver)
	srv := newHTTPServer(api, logger, defaultHTTPLimits)
	srv.RegisterOnShutdown(api.CloseSubscriptions) // open subscriptions would hold Shutdown
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(sec.listener(httpLn, cfg.MaxConns)) }()
	logger.Info("tally node started", "http_addr", cfg.HTTPAddr, "raft_addr", cfg.RaftAddr, "groups", groups,
		"data_dir", cfg.DataDir, "store", redactDSN(cfg.StoreDSN), "https", sec.tls != nil,
		"mutual_tls", sec.tls != nil && sec.tls.HasCA(), "cluster_key", sec.key != nil)

	if len(nodes[0].Status().Members) == 0 && len(cfg.Join) > 0 {
		if err := joinWith(ctx, cfg, sec.client(10*time.Second), logger); err != nil {
			logger.Error("join failed", "err", err)
		}
	}
	if cfg.Bootstrap && len(cfg.Apps) > 0 {
		for _, n := range nodes {
			go deployAtBootstrap(ctx, n, cfg.Apps, groups, logger.With("group", n.Group()))
		}
	}
	balanceCtx, stopBalance := context.WithCancel(ctx)
	go raftnode.Balance(balanceCtx, nodes, logger)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-httpErr:
		logger.Error("HTTP server failed", "err", runErr)
	case runErr = <-shardErr:
		logger.Error("refusing to run with another shard ID than the group's", "err", runErr)
	}
	stopBalance()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Stop taking requests, hand leaderships over, then stop Raft.
	shutErr := srv.Shutdown(shutdownCtx)
	closeErr := closeAll(nodes, logger)
	logger.Info("stopped")
	return errors.Join(runErr, shutErr, closeErr)
}

// secureDataDir creates the data dir 0700 and tightens one that group or others can read:
// it holds app texts with sink credentials, and events.
func secureDataDir(cfg serveConfig, logger *slog.Logger) error {
	return raftnode.SecureDir(cfg.DataDir, logger)
}

// nodeConfig maps the serve flags to one group's replica configuration.
func nodeConfig(cfg serveConfig, group uint32, dir, shard string, rollups store.Rollups, logger *slog.Logger) raftnode.Config {
	ncfg := raftnode.DefaultConfig()
	ncfg.ID, ncfg.Group, ncfg.Bootstrap, ncfg.AggTimeZone, ncfg.Logger = cfg.ID, group, cfg.Bootstrap, cfg.AggTimeZone, logger
	ncfg.DataDir = dir
	ncfg.Store, ncfg.ShardID = rollups, shard
	ncfg.MaxKeys = cfg.MaxKeys
	if cfg.ProducerTTL > 0 {
		ncfg.ProducerTTL = cfg.ProducerTTL
	}
	ncfg.SinkPolicy, ncfg.SMTP = cfg.sinkPolicy, cfg.smtp
	if cfg.FlushInterval > 0 {
		ncfg.FlushInterval = cfg.FlushInterval
	}
	if cfg.MaxUnflushedRows > 0 {
		ncfg.MaxUnflushedRows = cfg.MaxUnflushedRows
	}
	if cfg.SnapshotThreshold > 0 {
		ncfg.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		ncfg.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.TrailingLogs > 0 {
		ncfg.TrailingLogs = cfg.TrailingLogs
	}
	return ncfg
}

// closeAll closes the replicas concurrently (each leader hands its group over first).
func closeAll(nodes []*raftnode.Node, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = n.Close(ctx); errs[i] != nil {
				logger.Warn("closing a group replica", "group", i, "err", errs[i])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// clusterFile records the cluster's shape in the data directory.
const clusterFile = "cluster.json"

type clusterMeta struct {
	Groups int `json:"groups"`
}

// clusterGroups is the number of partition groups: recorded in the data directory after the
// first start; chosen with --groups when bootstrapping; learned from the node joined through
// otherwise.
func clusterGroups(ctx context.Context, cfg serveConfig, client *http.Client, logger *slog.Logger) (int, error) {
	path := filepath.Join(cfg.DataDir, clusterFile)
	if b, err := os.ReadFile(path); err == nil {
		var m clusterMeta
		if err := json.Unmarshal(b, &m); err != nil || m.Groups < 1 {
			return 0, fmt.Errorf("%s is damaged (%v): it should hold {\"groups\": N}", path, err)
		}
		if cfg.groupsSet && cfg.Groups != m.Groups {
			return 0, fmt.Errorf("--groups %d differs from this cluster's %d groups (%s): the number of groups is fixed when the cluster is created", cfg.Groups, m.Groups, path)
		}
		return m.Groups, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n := cfg.Groups
	if len(cfg.Join) > 0 {
		var err error
		if n, err = groupsOf(ctx, cfg.Join, client, logger); err != nil {
			return 0, err
		}
		if cfg.groupsSet && cfg.Groups != n {
			return 0, fmt.Errorf("--groups %d differs from the cluster's %d groups", cfg.Groups, n)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, raftnode.DirMode); err != nil {
		return 0, fmt.Errorf("create data dir: %w", err)
	}
	b, _ := json.Marshal(clusterMeta{Groups: n})
	if err := os.WriteFile(path, b, raftnode.FileMode); err != nil {
		return 0, fmt.Errorf("record the cluster's groups: %w", err)
	}
	return n, nil
}

// nodeClient is an HTTP client for requests to other nodes, connecting through dial (nil:
// directly).
func nodeClient(timeout time.Duration, dial raftnode.Dialer) *http.Client {
	c := &http.Client{Timeout: timeout}
	if dial != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = dial
		c.Transport = t
	}
	return c
}

// groupsOf asks the nodes to join through how many groups the cluster has, retrying until one
// answers or ctx ends.
func groupsOf(ctx context.Context, urls []string, client *http.Client, logger *slog.Logger) (int, error) {
	for backoff := 200 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		for _, base := range urls {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/cluster/status", nil)
			if err != nil {
				return 0, err
			}
			resp, err := client.Do(req)
			if err != nil {
				logger.Warn("cannot read the cluster's status yet", "via", base, "err", err)
				continue
			}
			var st httpapi.ClusterStatus
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && len(st.Groups) > 0 {
				return len(st.Groups), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// shardFile remembers a group's shard ID in its data directory.
const shardFile = "shard-id"

// shardToPropose picks the shard ID this node replicates for group g if the group has none:
// the configured one (NAME, or NAME-<g> when the cluster has several groups), else the one
// this node recorded before, else the group ID when bootstrapping; "" means adopt the
// group's. A configured ID that differs from the recorded one refuses the start: a group's
// shard ID never changes.
func shardToPropose(cfg serveConfig, groupDir string, g, groups int) (string, error) {
	b, err := os.ReadFile(filepath.Join(groupDir, shardFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read shard ID: %w", err)
	}
	recorded := strings.TrimSpace(string(b))
	want := groupShard(cfg, g, groups)
	switch {
	case cfg.shardIDSet && recorded != "" && recorded != want:
		return "", fmt.Errorf("--shard-id %q gives group %d the shard ID %q, which differs from this group's shard ID %q (recorded in %s): a shard ID never changes",
			cfg.ShardID, g, want, recorded, filepath.Join(groupDir, shardFile))
	case recorded != "":
		return recorded, nil
	case cfg.Bootstrap:
		// The bootstrap node names the group: record it now, so that a restart with
		// another --shard-id is refused even if it comes before the group replicated it.
		if err := os.MkdirAll(groupDir, raftnode.DirMode); err != nil {
			return "", fmt.Errorf("record shard ID: %w", err)
		}
		if err := os.WriteFile(filepath.Join(groupDir, shardFile), []byte(want+"\n"), raftnode.FileMode); err != nil {
			return "", fmt.Errorf("record shard ID: %w", err)
		}
		return want, nil
	case cfg.shardIDSet:
		return want, nil
	}
	return "", nil
}

// groupShard is the shard ID the configuration gives group g: --shard-id NAME for a
// one-group cluster, NAME-<g> with several; the group ID without the flag.
func groupShard(cfg serveConfig, g, groups int) string {
	switch {
	case !cfg.shardIDSet:
		return strconv.Itoa(g)
	case groups == 1:
		return cfg.ShardID
	}
	return fmt.Sprintf("%s-%d", cfg.ShardID, g)
}

// watchShard waits until the group's shard ID is known, records it in the group's data
// directory, and returns an error if this node was configured with another one. It returns
// nil once recorded, or when ctx ends.
func watchShard(ctx context.Context, node *raftnode.Node, cfg serveConfig, groupDir, want string, logger *slog.Logger) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		shard := node.ShardID()
		if shard == "" {
			continue
		}
		if cfg.shardIDSet && shard != want {
			return fmt.Errorf("--shard-id %q gives group %d the shard ID %q, which differs from this group's shard ID %q: a shard ID never changes", cfg.ShardID, node.Group(), want, shard)
		}
		path := filepath.Join(groupDir, shardFile)
		if err := os.WriteFile(path, []byte(shard+"\n"), raftnode.FileMode); err != nil {
			logger.Warn("cannot record the shard ID", "path", path, "err", err)
		}
		logger.Info("group shard ID", "shard_id", shard)
		return nil
	}
}

// join asks the cluster, through any of the given nodes, to add this node, retrying until it
// succeeds or ctx ends. Its requests dial through dial (nil: directly), in plain HTTP(S).
func join(ctx context.Context, cfg serveConfig, dial raftnode.Dialer, logger *slog.Logger) error {
	return joinWith(ctx, cfg, nodeClient(10*time.Second, dial), logger)
}

// joinWith is join with the given client (transport.client: TLS, cluster key).
func joinWith(ctx context.Context, cfg serveConfig, client *http.Client, logger *slog.Logger) error {
	body, _ := json.Marshal(httpapi.JoinRequest{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr})
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		for _, base := range cfg.Join {
			url := strings.TrimRight(base, "/") + "/v1/cluster/join"
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				logger.Warn("join attempt failed", "via", base, "attempt", attempt, "err", err)
				continue
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				logger.Info("joined the cluster", "via", base)
				return nil
			}
			logger.Warn("join attempt refused", "via", base, "attempt", attempt, "status", resp.StatusCode, "body", strings.TrimSpace(string(msg)))
			if resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusBadRequest {
				return fmt.Errorf("join refused by %s: %s", base, strings.TrimSpace(string(msg)))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// deployAtBootstrap deploys the --app files once this node leads, skipping apps that are
// already deployed (a restart must not replace an app and drop its state) and apps that
// partition.CheckApp refuses with this many groups, as POST /v1/apps does.
func deployAtBootstrap(ctx context.Context, node *raftnode.Node, files []string, groups int, logger *slog.Logger) {
	deadline := time.Now().Add(30 * time.Second)
	for !node.IsLeader() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			logger.Warn("not leader; --app files were not deployed", "files", files)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			logger.Error("read --app file", "file", f, "err", err)
			continue
		}
		scratch, _ := engine.New(engine.Config{})
		app, err := scratch.Deploy(string(text))
		if err != nil {
			logger.Error("invalid --app file", "file", f, "err", err)
			continue
		}
		if err := partition.CheckApp(app.Parsed, groups); err != nil {
			logger.Error("--app file refused with this many groups; not deployed", "file", f, "groups", groups, "err", err)
			continue
		}
		exists := false
		_ = node.Read(ctx, raftnode.Stale, 0, func(e *engine.Engine) { _, exists = e.App(app.Name) })
		if exists {
			logger.Info("app already deployed; leaving it (use `tally apps deploy` to replace it)", "app", app.Name)
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		name, index, err := node.Deploy(dctx, string(text))
		cancel()
		if err != nil {
			logger.Error("deploy --app file", "file", f, "err", err)
			continue
		}
		logger.Info("deployed app", "app", name, "index", index, "file", f)
	}
}

// redactDSN hides the password of a mysql://user:pass@... DSN for logs.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return "(unparsable DSN)"
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return dsn
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return dsn
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
