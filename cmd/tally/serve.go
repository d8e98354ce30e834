package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/node"
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
	if err := secureDataDir(cfg, logger); err != nil {
		return err
	}
	geo, closeGeo, err := openGeoIP(cfg.GeoIPDB, logger)
	if err != nil {
		return err
	}
	defer closeGeo()

	acfg := httpapi.DefaultConfig()
	acfg.Logger, acfg.Profiling = logger, cfg.Pprof
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
	ncfg := node.Config{
		ID: cfg.ID, HTTPAddr: cfg.HTTPAddr, RaftAddr: cfg.RaftAddr, DataDir: cfg.DataDir, Zone: cfg.Zone,
		Bootstrap: cfg.Bootstrap, Groups: cfg.Groups, GroupsSet: cfg.groupsSet, Replicas: cfg.Replicas,
		Join: cfg.Join, Apps: cfg.Apps, ShardID: cfg.ShardID, ShardIDSet: cfg.shardIDSet,
		StoreDSN: cfg.StoreDSN, DeadNodeTimeout: cfg.DeadNodeTimeout,
		MuxOptions: sec.muxOptions(cfg.MaxConns),
		Listener:   func(ln net.Listener) net.Listener { return sec.listener(ln, cfg.MaxConns) },
		HTTPServer: func(h http.Handler) *http.Server { return newHTTPServer(h, logger, defaultHTTPLimits) },
		Client:     sec.client(10 * time.Second),
		API:        acfg,
		Replica: func(g uint32) raftnode.Config {
			rc := nodeConfig(cfg, g, "", "", nil, logger)
			if clock != nil {
				rc.Clock = clock.Now // one clock for every group of the node
			}
			return rc
		},
		GeoIP:  geo,
		Logger: logger,
	}
	n, err := node.Open(ctx, ncfg)
	if err != nil {
		return err
	}
	logger.Info("serving", "https", sec.tls != nil, "mutual_tls", sec.tls != nil && sec.tls.HasCA(),
		"cluster_key", sec.key != nil, "store", redactDSN(cfg.StoreDSN))
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-n.Failed():
		logger.Error("node failed", "err", runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(runErr, n.Close(shutdownCtx))
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
	if cfg.FlushChunkRows > 0 {
		ncfg.FlushChunkRows = cfg.FlushChunkRows
	}
	ncfg.LogStore, ncfg.WALSegmentBytes = cfg.RaftLogStore, cfg.RaftWALSegmentBytes
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
