package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
)

// appsGrace is how long after recording a deploy or undeploy the controller's leader
// leaves the groups' apps to the request's own fan-out: changing them meanwhile would race
// it (an undeploy answered 404 because the reconciler removed the app first).
const appsGrace = 5 * time.Second

// appsOpTimeout bounds one deploy or undeploy the reconciler makes on a group (under
// appsMu, which recording an app waits for).
const appsOpTimeout = 5 * time.Second

// appsRecheck is how often the controller's leader looks again at a group whose apps
// matched the map, in case they changed another way.
const appsRecheck = 30 * time.Second

// errUnread: the controller's leader could not read a group's apps (no leader yet, say).
var errUnread = errors.New("the group's apps are unknown")

// appsCheck is what the controller's leader last found of a group's apps.
type appsCheck struct {
	index uint64    // the map's AppsIndex the group's apps matched (0: not yet)
	at    time.Time // when
	err   string    // the last failure logged, so a failure repeated every round is logged once
}

// DeployApp records an app in the cluster map, on the controller's leader
// (raftnode.ErrNotLeader elsewhere), and returns its name. It first checks the app as every
// group's leader will: against the map's apps (syntax, types, streams and tables another app
// owns, sinks), against this node's configuration for every group (raftnode.CheckApp: sink
// policy, the store's limits, shard IDs), and prepares its tables in the shared store; a
// refused app changes nothing. The groups deploy it afterwards: the caller does, and the
// controller's leader deploys it on any group that misses it (reconcileApps).
func (n *Node) DeployApp(ctx context.Context, text string) (string, error) {
	return n.deployApp(ctx, text, true)
}

// deployApp is DeployApp; fanOut says the caller deploys the app to the groups itself, so
// the reconciler leaves the groups' apps alone for appsGrace.
func (n *Node) deployApp(ctx context.Context, text string, fanOut bool) (string, error) {
	if !n.ctl.IsLeader() {
		return "", raftnode.ErrNotLeader
	}
	n.appsMu.Lock()
	defer n.appsMu.Unlock()
	if err := n.ctl.Barrier(ctx); err != nil {
		return "", err
	}
	m, _ := n.ctl.Map()
	if !m.Initialized() {
		return "", fmt.Errorf("%w: the cluster map is not created yet", raftnode.ErrNoLeader)
	}
	app, err := n.catalogFor(m).eng.CheckDeploy(text)
	if err != nil {
		return "", err
	}
	for _, g := range m.Groups {
		if err := raftnode.CheckApp(n.replicaConfig(g.ID), g.Shard, app); err != nil {
			return "", err
		}
	}
	if err := raftnode.PrepareStore(ctx, n.replicaConfig(0), app); err != nil {
		return "", err
	}
	index, err := n.ctl.ProposeIndex(ctx, clustermap.Deploy(app.Name, text))
	if err != nil {
		return "", fmt.Errorf("record app %s in the cluster map: %w", app.Name, err)
	}
	if fanOut {
		n.appsRecorded.Store(time.Now().UnixNano())
	}
	n.logger.Info("app recorded in the cluster map", "app", app.Name, "index", index)
	return app.Name, nil
}

// UndeployApp removes an app from the cluster map, on the controller's leader
// (raftnode.ErrNotLeader elsewhere); a name the map does not hold changes nothing. The
// groups remove it afterwards, as for DeployApp.
func (n *Node) UndeployApp(ctx context.Context, name string) error {
	if !n.ctl.IsLeader() {
		return raftnode.ErrNotLeader
	}
	n.appsMu.Lock()
	defer n.appsMu.Unlock()
	if err := n.ctl.Barrier(ctx); err != nil {
		return err
	}
	m, _ := n.ctl.Map()
	if _, ok := m.App(name); !ok {
		return nil
	}
	index, err := n.ctl.ProposeIndex(ctx, clustermap.Undeploy(name))
	if err != nil {
		return fmt.Errorf("remove app %s from the cluster map: %w", name, err)
	}
	n.appsRecorded.Store(time.Now().UnixNano())
	n.logger.Info("app removed from the cluster map", "app", name, "index", index)
	return nil
}

func textHash(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:])
}

// startReconcileApps runs reconcileApps in the background unless it still runs, so a
// group that does not answer never holds up the controller's round.
func (n *Node) startReconcileApps(m clustermap.Map) {
	if !n.appsBusy.CompareAndSwap(false, true) {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.appsBusy.Store(false)
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		n.reconcileApps(ctx, m)
	}()
}

// reconcileApps, on the controller's leader, makes every group run exactly the map's apps:
// it deploys what a group misses or runs another text of (a group whose leader was
// unreachable during the deploy) and, once the map holds every app, undeploys what the map
// no longer has. A group whose apps matched the map is looked at again when the map's apps
// change, or after appsRecheck. Within appsGrace of a change this node recorded it does
// nothing. A map created before it kept apps first adopts them.
func (n *Node) reconcileApps(ctx context.Context, m clustermap.Map) {
	if time.Since(time.Unix(0, n.appsRecorded.Load())) < appsGrace {
		return
	}
	if !m.AppsComplete {
		if err := n.adoptApps(ctx, m); err != nil && ctx.Err() == nil {
			n.logger.Debug("cannot adopt the groups' apps yet", "err", err)
		}
		return
	}
	var wg sync.WaitGroup
	for _, g := range m.Groups {
		n.seenMu.Lock()
		last := n.appsSeen[g.ID]
		n.seenMu.Unlock()
		if last.index == m.AppsIndex && time.Since(last.at) < appsRecheck {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.reconcileGroupApps(ctx, g.ID)
			n.seenMu.Lock()
			defer n.seenMu.Unlock()
			c := n.appsSeen[g.ID]
			switch {
			case err == nil:
				n.appsSeen[g.ID] = appsCheck{index: m.AppsIndex, at: time.Now()}
			case errors.Is(err, errUnread):
				n.logger.Debug("cannot read a group's apps", "group", g.ID, "err", err)
			case ctx.Err() == nil && err.Error() != c.err:
				n.logger.Warn("a group's apps differ from the cluster map's and cannot be made the same yet", "group", g.ID, "err", err)
				c.err = err.Error()
				n.appsSeen[g.ID] = c
			}
		}()
	}
	wg.Wait()
}

// reconcileGroupApps makes group g run the map's apps. Every change is made under appsMu
// against the map read again there, so a deploy or undeploy recorded meanwhile is never
// undone (its own fan-out to the groups comes after).
func (n *Node) reconcileGroupApps(ctx context.Context, g uint32) error {
	have, err := n.groupApps(ctx, g)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnread, err)
	}
	n.appsMu.Lock()
	defer n.appsMu.Unlock()
	m, _ := n.ctl.Map()
	if !n.ctl.IsLeader() {
		return raftnode.ErrNotLeader
	}
	var errs []error
	for _, a := range m.Apps {
		if have[a.Name] == textHash(a.Text) {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, appsOpTimeout)
		err := n.groupDeploy(octx, g, a.Text)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("deploy %s: %w", a.Name, err))
			continue
		}
		n.logger.Info("deployed an app of the cluster map on a group that missed it", "app", a.Name, "group", g)
	}
	for _, name := range sortedKeys(have) {
		if _, ok := m.App(name); ok {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, appsOpTimeout)
		err := n.groupUndeploy(octx, g, name)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("undeploy %s: %w", name, err))
			continue
		}
		n.logger.Info("undeployed an app the cluster map no longer has", "app", name, "group", g)
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// adoptApps records in a map created before the map kept apps the apps of a group this
// node leads (read linearizably), making the map their record from then on.
func (n *Node) adoptApps(ctx context.Context, m clustermap.Map) error {
	for _, g := range m.Groups {
		r := n.slots[g.ID].local()
		if r == nil || !r.IsLeader() {
			continue
		}
		var apps []clustermap.App
		if err := r.Read(ctx, raftnode.Linearizable, 0, func(e fsm.View) {
			for _, a := range e.Apps() {
				apps = append(apps, clustermap.App{Name: a.Name(), Text: a.Text()})
			}
		}); err != nil {
			return err
		}
		n.appsMu.Lock()
		defer n.appsMu.Unlock()
		if err := n.ctl.Propose(ctx, clustermap.Adopt(apps)); err != nil {
			return err
		}
		n.logger.Info("the cluster map holds the deployed apps from now on", "apps", len(apps), "from_group", g.ID)
		return nil
	}
	return errors.New("this node leads no group to read the apps from")
}

// groupApps is group g's apps as its leader runs them: name → SHA-256 of the text.
func (n *Node) groupApps(ctx context.Context, g uint32) (map[string]string, error) {
	out := map[string]string{}
	if r := n.slots[g].local(); r != nil && r.IsLeader() {
		err := r.Read(ctx, raftnode.Stale, 0, func(e fsm.View) {
			for _, a := range e.Apps() {
				out[a.Name()] = textHash(a.Text())
			}
		})
		return out, err
	}
	code, body, err := n.api.GroupCall(ctx, int(g), http.MethodGet, "/v1/apps", url.Values{"text": {"true"}}, nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("apps of group %d: %d %s", g, code, body)
	}
	var v struct {
		Apps []struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("apps of group %d: %w", g, err)
	}
	for _, a := range v.Apps {
		out[a.Name] = a.SHA256
	}
	return out, nil
}

func (n *Node) groupDeploy(ctx context.Context, g uint32, text string) error {
	if r := n.slots[g].local(); r != nil && r.IsLeader() {
		_, _, err := r.Deploy(ctx, text)
		if !errors.Is(err, raftnode.ErrNotLeader) {
			return err
		}
	}
	return n.groupOp(ctx, g, http.MethodPost, "/v1/apps", nil, []byte(text))
}

func (n *Node) groupUndeploy(ctx context.Context, g uint32, name string) error {
	if r := n.slots[g].local(); r != nil && r.IsLeader() {
		_, err := r.Undeploy(ctx, name)
		if errors.Is(err, engine.ErrUnknownApp) {
			return nil
		}
		if !errors.Is(err, raftnode.ErrNotLeader) {
			return err
		}
	}
	code, out, err := n.api.GroupCall(ctx, int(g), http.MethodDelete, "/v1/apps/"+url.PathEscape(name), nil, nil)
	switch {
	case err != nil:
		return err
	case code/100 == 2, code == http.StatusNotFound: // gone already (the request's own fan-out)
		return nil
	}
	return fmt.Errorf("DELETE /v1/apps/%s on group %d: %d %s", name, g, code, out)
}
