package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/raftnode"
)

// clusterFile records the cluster's shape in the data directory.
const clusterFile = "cluster.json"

type clusterMeta struct {
	Groups int `json:"groups"`
}

// clusterGroups is the number of partition groups: recorded in the data directory after the
// first start; chosen with Groups when bootstrapping; learned from the node joined through
// otherwise.
func (n *Node) clusterGroups(ctx context.Context) (int, error) {
	cfg := n.cfg
	path := filepath.Join(cfg.DataDir, clusterFile)
	if b, err := os.ReadFile(path); err == nil {
		var m clusterMeta
		if err := json.Unmarshal(b, &m); err != nil || m.Groups < 1 {
			return 0, fmt.Errorf("%s is damaged (%v): it should hold {\"groups\": N}", path, err)
		}
		if cfg.GroupsSet && cfg.Groups != m.Groups {
			return 0, fmt.Errorf("--groups %d differs from this cluster's %d groups (%s): the number of groups is fixed when the cluster is created", cfg.Groups, m.Groups, path)
		}
		return m.Groups, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	g := max(cfg.Groups, 1)
	if len(cfg.Join) > 0 && !cfg.Bootstrap {
		var err error
		if g, err = GroupsOf(ctx, n.cfg.Client, n.cfg.Join, n.logger); err != nil {
			return 0, err
		}
		if cfg.GroupsSet && cfg.Groups != g {
			return 0, fmt.Errorf("--groups %d differs from the cluster's %d groups", cfg.Groups, g)
		}
	}
	b, _ := json.Marshal(clusterMeta{Groups: g})
	if err := os.WriteFile(path, b, raftnode.FileMode); err != nil {
		return 0, fmt.Errorf("record the cluster's groups: %w", err)
	}
	return g, nil
}

// GroupsOf asks the nodes at urls how many groups the cluster has, retrying until one
// answers or ctx ends.
func GroupsOf(ctx context.Context, client *http.Client, urls []string, logger *slog.Logger) (int, error) {
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

// groupShard is the shard ID the configuration gives group g: ShardID for a one-group
// cluster, ShardID-<g> with several; the group ID without one.
func (n *Node) groupShard(g, groups int) string {
	switch {
	case !n.cfg.ShardIDSet:
		return strconv.Itoa(g)
	case groups == 1:
		return n.cfg.ShardID
	}
	return fmt.Sprintf("%s-%d", n.cfg.ShardID, g)
}

// bootstrap creates the cluster map once this node leads the controller group (a new
// cluster: this node holds every group's first replica), then deploys the app files.
func (n *Node) bootstrap(groups int) {
	defer n.wg.Done()
	for !n.ctl.IsLeader() {
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	// A restart replays the map: read it as it is, not before the replay reached init.
	bctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	err := n.ctl.Barrier(bctx)
	cancel()
	if err != nil {
		n.logger.Warn("not the controller's leader any more; leaving the cluster's creation and --app files", "err", err)
		return
	}
	m, _ := n.ctl.Map()
	if !m.Initialized() {
		shards := make([]string, groups)
		for g := range shards {
			shards[g] = n.groupShard(g, groups)
		}
		self := clustermap.Node{ID: n.cfg.ID, RaftAddr: n.cfg.RaftAddr, HTTPAddr: n.cfg.HTTPAddr, Zone: n.cfg.Zone}
		// Set before the map exists, so the reconciler that sees it first forms the groups.
		n.created.Store(true)
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.ctl.Propose(ctx, clustermap.Init(n.cfg.Replicas, self, shards))
		cancel()
		if err != nil {
			n.created.Store(false)
			n.logger.Error("cannot create the cluster map", "err", err)
			return
		}
		n.logger.Info("created the cluster", "groups", groups, "replicas", n.cfg.Replicas)
	}
	if len(n.cfg.Apps) == 0 {
		return
	}
	n.deployFiles(groups)
}

// deployFiles records the --app files in the cluster map, from which the controller deploys
// them on every group. It skips apps the map holds already, or (a map created before it
// kept apps) this node's replicas run: a restart must not replace an app and drop its
// state. Apps that partition.CheckApp refuses with this many groups are refused, as POST
// /v1/apps does.
func (n *Node) deployFiles(groups int) {
	bctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	err := n.ctl.Barrier(bctx) // the map as it is, not as a restart replays it
	cancel()
	if err != nil {
		n.logger.Warn("not the controller's leader; --app files were not deployed", "files", n.cfg.Apps, "err", err)
		return
	}
	for _, f := range n.cfg.Apps {
		text, err := os.ReadFile(f)
		if err != nil {
			n.logger.Error("read --app file", "file", f, "err", err)
			continue
		}
		scratch, _ := engine.New(engine.Config{})
		app, err := scratch.Deploy(string(text))
		if err != nil {
			n.logger.Error("invalid --app file", "file", f, "err", err)
			continue
		}
		if err := partition.CheckApp(app.Parsed, groups); err != nil {
			n.logger.Error("--app file refused with this many groups; not deployed", "file", f, "groups", groups, "err", err)
			continue
		}
		if n.hasApp(app.Name) {
			n.logger.Info("app already deployed; leaving it (use `tally apps deploy` to replace it)", "app", app.Name)
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
		_, err = n.deployApp(ctx, string(text), false) // the controller deploys it on the groups
		cancel()
		n.kick()
		if err != nil {
			n.logger.Error("deploy --app file", "file", f, "err", err)
			continue
		}
		n.logger.Info("deployed app", "app", app.Name, "file", f)
	}
}

// hasApp reports whether the cluster map, or for a map that does not hold every app one of
// this node's replicas, has the app.
func (n *Node) hasApp(name string) bool {
	m, _ := n.ctl.Map()
	if _, ok := m.App(name); ok || m.AppsComplete {
		return ok
	}
	exists := false
	for _, s := range n.slots {
		if r := s.local(); r != nil {
			_ = r.Read(n.ctx, raftnode.Stale, 0, func(e fsm.View) { _, exists = e.App(name) })
			if exists {
				return true
			}
		}
	}
	return false
}

// join asks the cluster, through any of the Join nodes, to add this node to its map.
func (n *Node) join(ctx context.Context) error {
	req := httpapi.JoinRequest{ID: n.cfg.ID, RaftAddr: n.cfg.RaftAddr, HTTPAddr: n.cfg.HTTPAddr, Zone: n.cfg.Zone}
	return Join(ctx, n.cfg.Client, n.cfg.Join, req, n.logger)
}

// Join asks the cluster, through any of the nodes at urls, to add the node req names,
// retrying until it succeeds, is refused (400, 409) or ctx ends.
func Join(ctx context.Context, client *http.Client, urls []string, jr httpapi.JoinRequest, logger *slog.Logger) error {
	body, _ := json.Marshal(jr)
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		for _, base := range urls {
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
