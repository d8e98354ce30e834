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
	ncfg := raftnode.DefaultConfig()
	ncfg.ID, ncfg.Group, ncfg.Bootstrap, ncfg.AggTimeZone, ncfg.Logger = cfg.ID, group, cfg.Bootstrap, cfg.AggTimeZone, logger
	ncfg.DataDir = filepath.Join(cfg.DataDir, fmt.Sprintf("group-%d", group))
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
	acfg.NodeID, acfg.ShardID, acfg.Logger = cfg.ID, cfg.ShardID, logger
	srv := &http.Server{Handler: httpapi.New(acfg, node, resolver), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(httpLn) }()
	logger.Info("tally node started", "http_addr", cfg.HTTPAddr, "raft_addr", cfg.RaftAddr, "data_dir", cfg.DataDir, "shard_id", cfg.ShardID)

	if len(node.Status().Members) == 0 && len(cfg.Join) > 0 {
		if err := join(ctx, cfg, logger); err != nil {
			logger.Error("join failed", "err", err)
		}
	}
	if cfg.Bootstrap && len(cfg.Apps) > 0 {
		go deployAtBootstrap(ctx, node, cfg.Apps, logger)
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-httpErr:
		logger.Error("HTTP server failed", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Stop taking requests, hand leadership over, then stop Raft.
	shutErr := srv.Shutdown(shutdownCtx)
	closeErr := node.Close(shutdownCtx)
	logger.Info("stopped")
	return errors.Join(shutErr, closeErr)
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
