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
	"strings"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/store"
)

const serveUsage = `usage: tally serve --id ID [--bootstrap | --join URL] [flags]

Runs a Tally node: one replica of the partition group, its Raft port and its HTTP API.
The first node of a cluster starts with --bootstrap (and --app files to deploy); the others
start with --join http://any-node:port. A restarted node needs neither: it finds its state
in --data-dir.

flags:
`

// compile-time checks that the pieces fit.
var (
	_ httpapi.Group    = (*raftnode.Node)(nil)
	_ httpapi.Resolver = (*raftnode.Resolver)(nil)
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
	mux, err := raftnode.NewMux(cfg.RaftAddr, raftnode.Meta{ID: cfg.ID, HTTPAddr: cfg.HTTPAddr, RaftAddr: cfg.RaftAddr}, logger)
	if err != nil {
		return err
	}
	defer mux.Close()
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP address %s: %w", cfg.HTTPAddr, err)
	}
	defer httpLn.Close()

	const group = 0
	groupDir := filepath.Join(cfg.DataDir, fmt.Sprintf("group-%d", group))
	shard, err := shardToPropose(cfg, groupDir)
	if err != nil {
		return err
	}
	rollups, err := store.Open(ctx, cfg.StoreDSN, logger)
	if err != nil {
		return err
	}
	defer rollups.Close()
	ncfg := raftnode.DefaultConfig()
	ncfg.ID, ncfg.Group, ncfg.Bootstrap, ncfg.AggTimeZone, ncfg.Logger = cfg.ID, group, cfg.Bootstrap, cfg.AggTimeZone, logger
	ncfg.DataDir = groupDir
	ncfg.Store, ncfg.ShardID = rollups, shard
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
	node, err := raftnode.Open(ncfg, raftnode.NewTCPTransport(mux, group, logger))
	if err != nil {
		return err
	}
	resolver := raftnode.NewResolver()
	acfg := httpapi.DefaultConfig()
	acfg.NodeID, acfg.Logger = cfg.ID, logger
	srv := &http.Server{Handler: httpapi.New(acfg, node, resolver), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(httpLn) }()
	logger.Info("tally node started", "http_addr", cfg.HTTPAddr, "raft_addr", cfg.RaftAddr, "data_dir", cfg.DataDir, "store", redactDSN(cfg.StoreDSN))

	if len(node.Status().Members) == 0 && len(cfg.Join) > 0 {
		if err := join(ctx, cfg, logger); err != nil {
			logger.Error("join failed", "err", err)
		}
	}
	if cfg.Bootstrap && len(cfg.Apps) > 0 {
		go deployAtBootstrap(ctx, node, cfg.Apps, logger)
	}

	shardErr := make(chan error, 1)
	go func() {
		if err := watchShard(ctx, node, cfg, groupDir, logger); err != nil {
			shardErr <- err
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-httpErr:
		logger.Error("HTTP server failed", "err", runErr)
	case runErr = <-shardErr:
		logger.Error("refusing to run with another shard ID than the group's", "err", runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Stop taking requests, hand leadership over, then stop Raft.
	shutErr := srv.Shutdown(shutdownCtx)
	closeErr := node.Close(shutdownCtx)
	logger.Info("stopped")
	return errors.Join(runErr, shutErr, closeErr)
}

// shardFile remembers a group's shard ID in its data directory.
const shardFile = "shard-id"

// shardToPropose picks the shard ID this node replicates if the group has none: the
// configured one, else the one this node recorded before, else the group ID when
// bootstrapping; "" means adopt the group's. A configured ID that differs from the recorded
// one refuses the start: a group's shard ID never changes.
func shardToPropose(cfg serveConfig, groupDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(groupDir, shardFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read shard ID: %w", err)
	}
	recorded := strings.TrimSpace(string(b))
	switch {
	case cfg.shardIDSet && recorded != "" && recorded != cfg.ShardID:
		return "", fmt.Errorf("--shard-id %q differs from this group's shard ID %q (recorded in %s): a shard ID never changes; start with --shard-id %s or without the flag",
			cfg.ShardID, recorded, filepath.Join(groupDir, shardFile), recorded)
	case cfg.shardIDSet:
		return cfg.ShardID, nil
	case recorded != "":
		return recorded, nil
	case cfg.Bootstrap:
		return cfg.ShardID, nil // the default, the group ID
	}
	return "", nil
}

// watchShard waits until the group's shard ID is known, records it in the data directory,
// and returns an error if this node was configured with another one. It returns nil without
// waiting further once recorded, or when ctx ends.
func watchShard(ctx context.Context, node *raftnode.Node, cfg serveConfig, groupDir string, logger *slog.Logger) error {
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
		if cfg.shardIDSet && shard != cfg.ShardID {
			return fmt.Errorf("the group's shard ID is %q but this node was started with --shard-id %q", shard, cfg.ShardID)
		}
		path := filepath.Join(groupDir, shardFile)
		if err := os.WriteFile(path, []byte(shard+"\n"), 0o644); err != nil {
			logger.Warn("cannot record the shard ID", "path", path, "err", err)
		}
		logger.Info("group shard ID", "shard_id", shard)
		return nil
	}
}

// join asks the cluster, through any of the given nodes, to add this node, retrying until it
// succeeds or ctx ends.
func join(ctx context.Context, cfg serveConfig, logger *slog.Logger) error {
	body, _ := json.Marshal(httpapi.JoinRequest{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr})
	client := &http.Client{Timeout: 10 * time.Second}
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
// already deployed (a restart must not replace an app and drop its state).
func deployAtBootstrap(ctx context.Context, node *raftnode.Node, files []string, logger *slog.Logger) {
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
