package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/tally-db/tally/jepsen/check"
)

// clusterMap is the part of GET /v1/cluster/map the harness reads.
type clusterMap struct {
	Index    uint64    `json:"index"`
	Replicas int       `json:"replicas"`
	Nodes    []mapNode `json:"nodes"`
	Groups   []struct {
		ID     int      `json:"id"`
		Voters []string `json:"voters"`
		Move   *struct {
			Add    string `json:"add"`
			Remove string `json:"remove"`
		} `json:"move"`
	} `json:"groups"`
	Controller *struct {
		ID string `json:"id"`
	} `json:"controller"`
}

type mapNode struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// sample turns m, as node saw it at, into the history's form.
func (m *clusterMap) sample(node string, at time.Duration) check.MapSample {
	s := check.MapSample{Node: node, Index: m.Index, Nodes: map[string]string{}, At: at}
	for _, n := range m.Nodes {
		s.Nodes[n.ID] = n.State
	}
	for _, g := range m.Groups {
		mg := check.MapGroup{ID: g.ID, Voters: g.Voters}
		if g.Move != nil {
			mg.Move = fmt.Sprintf("+%s -%s", g.Move.Add, g.Move.Remove)
		}
		s.Groups = append(s.Groups, mg)
	}
	return s
}

func (m *clusterMap) has(id string) bool {
	return slices.ContainsFunc(m.Nodes, func(n mapNode) bool { return n.ID == id })
}

// moving returns a move in progress that adds or removes id ("" for any node), or nil.
func (m *clusterMap) moving(id string) (add, remove string, ok bool) {
	for _, g := range m.Groups {
		if g.Move != nil && (id == "" || g.Move.Add == id || g.Move.Remove == id) {
			return g.Move.Add, g.Move.Remove, true
		}
	}
	return "", "", false
}

// settled reports whether m has every group on replicas distinct voters, no move in progress
// and every node active.
func (m *clusterMap) settled(replicas int) bool {
	for _, n := range m.Nodes {
		if n.State != "active" {
			return false
		}
	}
	for _, g := range m.Groups {
		if g.Move != nil || len(g.Voters) != replicas {
			return false
		}
	}
	return len(m.Groups) > 0
}

// readMap reads the cluster map from every running member and returns the newest copy (the
// highest index) and the node that holds it: a node that has just been removed from the
// controller group keeps its last copy, which no longer changes.
func (c *cluster) readMap(ctx context.Context) (*clusterMap, *node, error) {
	var errs []error
	var best *clusterMap
	var from *node
	for _, n := range c.members() {
		if !n.running() {
			continue
		}
		var m clusterMap
		if err := c.getJSON(ctx, n, "/v1/cluster/map", &m); err != nil {
			errs = append(errs, err)
			continue
		}
		if best == nil || m.Index > best.Index {
			best, from = &m, n
		}
	}
	if best == nil {
		return nil, nil, fmt.Errorf("read the cluster map: no running member answered: %w", errors.Join(errs...))
	}
	return best, from, nil
}

// waitSettled waits until the map is settled (every group on c.replicas voters, no move, no
// node draining) and also satisfies cond, with the same map index for a second: a round of
// the controller that plans the next moves right after one finished is not mistaken for
// the end.
func (c *cluster) waitSettled(ctx context.Context, timeout time.Duration, what string, cond func(*clusterMap) bool) error {
	var index uint64
	var since time.Time
	return c.eventually(ctx, timeout, "the cluster map to settle ("+what+")", func() bool {
		m, _, err := c.readMap(ctx)
		if err != nil || !m.settled(c.replicas) || (cond != nil && !cond(m)) {
			since = time.Time{}
			return false
		}
		if since.IsZero() || m.Index != index {
			index, since = m.Index, time.Now()
			return false
		}
		return time.Since(since) >= time.Second
	})
}

// free returns the node slots that are not members (never started, or drained out).
func (c *cluster) free() []*node {
	var out []*node
	for _, n := range c.nodes {
		n.mu.Lock()
		if !n.member {
			out = append(out, n)
		}
		n.mu.Unlock()
	}
	return out
}

// addNode starts n, which joins the cluster through the running members, and waits until
// it serves HTTP (not until replicas moved onto it).
func (c *cluster) addNode(ctx context.Context, n *node) error {
	if err := os.RemoveAll(n.dataDir); err != nil {
		return fmt.Errorf("clear %s's data: %w", n.id, err)
	}
	n.boot = false
	c.mu.Lock()
	c.drained = slices.DeleteFunc(c.drained, func(id string) bool { return id == n.id })
	c.mu.Unlock()
	return c.startNode(ctx, n)
}

// drainable returns the members that may be drained: running, more than replicas members
// would remain, and not the only member of their zone.
func (c *cluster) drainable(zones bool) []*node {
	ms := c.members()
	if len(ms) <= c.replicas {
		return nil
	}
	var out []*node
	for _, n := range ms {
		if !n.running() {
			continue
		}
		peers := 0
		for _, o := range ms {
			if o != n && (!zones || zoneOf(o.id) == zoneOf(n.id)) {
				peers++
			}
		}
		if peers > 0 {
			out = append(out, n)
		}
	}
	return out
}

// drain asks the controller (through any running member) to drain n; 202 at once.
func (c *cluster) drain(ctx context.Context, n *node) error {
	var errs []error
	for _, m := range c.members() {
		if !m.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := m.api.Call(ctx, http.MethodPost, "/v1/cluster/nodes/"+n.id+"/drain", nil, "", nil)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("drain %s: %w", n.id, errors.Join(errs...))
}

// retire stops a node that left the map and forgets it: its slot is free again.
func (c *cluster) retire(n *node) {
	c.kill(n)
	n.mu.Lock()
	n.member = false
	n.mu.Unlock()
	_ = os.RemoveAll(n.dataDir)
	c.mu.Lock()
	c.drained = append(c.drained, n.id)
	c.mu.Unlock()
}

// sampleMap records the cluster map as one running member holds it and the Raft
// configuration of every group as its leaders report it.
func (w *workload) sampleMap(ctx context.Context) {
	c := w.c
	m, n, err := c.readMap(ctx)
	if err == nil {
		s := m.sample(n.id, w.rec.now())
		w.rec.mu.Lock()
		w.rec.h.Maps = append(w.rec.h.Maps, s)
		w.rec.mu.Unlock()
	}
	cs := c.configs(ctx, w.rec)
	w.rec.mu.Lock()
	w.rec.h.Configs = append(w.rec.h.Configs, cs...)
	w.rec.mu.Unlock()
}

// configs asks every running member for its status and returns the configuration of each
// group it leads.
func (c *cluster) configs(ctx context.Context, rec *recorder) []check.ConfigSample {
	var out []check.ConfigSample
	for _, n := range c.members() {
		if !n.running() {
			continue
		}
		st, err := c.status(ctx, n)
		if err != nil {
			continue
		}
		at := rec.now()
		for _, g := range st.Groups {
			if g.Role != "leader" {
				continue
			}
			cs := check.ConfigSample{Node: n.id, Group: int(g.ID), Term: g.Term, At: at}
			for _, m := range g.Members {
				if m.Voter {
					cs.Voters = append(cs.Voters, m.ID)
				} else {
					cs.NonVoters = append(cs.NonVoters, m.ID)
				}
			}
			out = append(out, cs)
		}
	}
	return out
}

// mapSampler samples the map and the groups' configurations every period, and while the
// map shows a move in progress the configurations every fast period as well: a move's
// steps (a non-voter added, promoted, the leaving voter removed) take a few hundred
// milliseconds, and a configuration one voter short would hide between slower samples.
func (w *workload) mapSampler(ctx context.Context, period, fast time.Duration) {
	for ctx.Err() == nil {
		w.sampleMap(ctx)
		next := time.Now().Add(period)
		for ctx.Err() == nil && time.Now().Before(next) {
			w.rec.mu.Lock()
			moving := len(w.rec.h.Maps) > 0 && slices.ContainsFunc(w.rec.h.Maps[len(w.rec.h.Maps)-1].Groups,
				func(g check.MapGroup) bool { return g.Move != "" })
			w.rec.mu.Unlock()
			if moving {
				cs := w.c.configs(ctx, w.rec)
				w.rec.mu.Lock()
				w.rec.h.Configs = append(w.rec.h.Configs, cs...)
				w.rec.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(fast):
			}
		}
	}
}

// finalPlacement waits for the map to settle and records it with every group's final
// configuration (from the leader with the highest term) and the drained nodes.
func finalPlacement(ctx context.Context, c *cluster, rec *recorder) error {
	settleErr := c.waitSettled(ctx, 60*time.Second, "after the heal", nil)
	m, n, err := c.readMap(ctx)
	if err != nil {
		return err
	}
	final := m.sample(n.id, rec.now())
	best := map[int]check.ConfigSample{}
	_ = c.eventually(ctx, 10*time.Second, "a leader's configuration of every group", func() bool {
		for _, cs := range c.configs(ctx, rec) {
			if b, ok := best[cs.Group]; !ok || cs.Term >= b.Term {
				best[cs.Group] = cs
			}
		}
		return len(best) >= len(final.Groups)
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.h.FinalMap = &final
	rec.h.FinalConfigs = nil
	for _, g := range final.Groups {
		if cs, ok := best[g.ID]; ok {
			rec.h.FinalConfigs = append(rec.h.FinalConfigs, cs)
		}
	}
	c.mu.Lock()
	rec.h.Drained = slices.Clone(c.drained)
	c.mu.Unlock()
	if settleErr != nil {
		c.logger.Warn("the map did not settle after the heal; the placement checker judges it as it is", "err", settleErr)
	}
	return nil
}
