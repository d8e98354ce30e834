package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/placement"
	"github.com/tally-db/tally/raftnode"
)

// moverState is what the controller's leader keeps between rounds (never needed by another
// leader: everything that must survive a crash is in the map).
type moverState struct {
	kickCh   chan struct{}
	seenMu   sync.Mutex
	lastSeen map[string]time.Time // node → when its Raft port last answered
	leading  bool
	// moveSince is when this leader first saw each group's move in progress (guarded by
	// seenMu); moveSeconds observes how long moves took, by outcome.
	moveSince   map[uint32]time.Time
	moveSeconds *prometheus.HistogramVec
	// appsSeen is what this leader last found of each group's apps (guarded by seenMu).
	appsSeen map[uint32]appsCheck
	// retireSince is when this leader first found each drained node holding nothing in
	// the map while the node itself still had replicas open (control loop only).
	retireSince map[string]time.Time
}

// retireGrace is how long a drained node that answers but still has replicas open keeps
// its place in the controller group, so that it learns from the map that it hosts nothing.
const retireGrace = 30 * time.Second

// newMoveSeconds is tally_move_seconds: how long the replica moves this node carried out as
// the controller's leader took, from when it started or first saw them to finish or abort.
func newMoveSeconds() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tally_move_seconds",
		Help:    "Duration of the replica moves this node carried out as the controller's leader, by result (finished, aborted).",
		Buckets: []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900},
	}, []string{"result"})
}

// moveStarted notes when this leader first saw group g's move.
func (n *Node) moveStarted(g uint32) {
	n.seenMu.Lock()
	if _, ok := n.moveSince[g]; !ok {
		n.moveSince[g] = time.Now()
	}
	n.seenMu.Unlock()
}

// moveEnded observes group g's move duration.
func (n *Node) moveEnded(g uint32, result string) {
	n.seenMu.Lock()
	since, ok := n.moveSince[g]
	delete(n.moveSince, g)
	n.seenMu.Unlock()
	if ok {
		n.moveSeconds.WithLabelValues(result).Observe(time.Since(since).Seconds())
	}
}

// kick makes the control loop run a round now.
func (n *Node) kick() {
	select {
	case n.kickCh <- struct{}{}:
	default:
	}
}

// controlLoop runs, on the controller's leader, a round every half second: node health,
// the groups' apps, moves in progress, new moves from placement.Plan, drained nodes leaving, leader balance.
func (n *Node) controlLoop() {
	defer n.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-n.kickCh:
		}
		if !n.ctl.IsLeader() {
			n.leading = false
			continue
		}
		if !n.leading {
			// A new controller leader gives every node a full timeout before calling it dead.
			n.seenMu.Lock()
			n.lastSeen = map[string]time.Time{}
			n.moveSince = map[uint32]time.Time{}
			n.appsSeen = map[uint32]appsCheck{}
			n.seenMu.Unlock()
			n.retireSince = map[string]time.Time{}
			n.leading = true
		}
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		if err := n.controlRound(ctx); err != nil && n.ctx.Err() == nil {
			n.logger.Debug("control round", "err", err)
		}
		cancel()
	}
}

func (n *Node) controlRound(ctx context.Context) error {
	m, _ := n.ctl.Map()
	if !m.Initialized() {
		return nil
	}
	if self, ok := m.Node(n.cfg.ID); ok && self.State != placement.Active {
		if handed, err := n.handOver(ctx, m); handed || err != nil {
			return err
		}
		// No active voter answers: lead on (this node stays until its replicas moved).
	}
	if err := n.checkHealth(ctx, m); err != nil {
		return err
	}
	m, _ = n.ctl.Map()
	n.startReconcileApps(m) // apps.go
	var wg sync.WaitGroup
	for _, g := range m.Groups {
		if g.Move == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.step(ctx, m, g); err != nil && ctx.Err() == nil {
				n.logger.Info("move waits", "move", g.Move.String(), "err", err)
			}
		}()
	}
	wg.Wait()
	m, _ = n.ctl.Map()
	moves, err := placement.Plan(m.PlacementInput(n.cfg.MaxMovesPerNode))
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if len(moves) > 0 {
		if err := n.ctl.Propose(ctx, clustermap.Start(moves...)); err != nil {
			return fmt.Errorf("start moves: %w", err)
		}
		for _, mv := range moves {
			n.logger.Info("move started", "move", mv.String())
		}
		return nil
	}
	if err := n.retireDrained(ctx, m); err != nil {
		return err
	}
	if err := n.fillControllerVoters(ctx, m); err != nil {
		return err
	}
	if len(m.Moves()) == 0 {
		return n.balanceLeaders(ctx, m)
	}
	return nil
}

// handOver passes the controller's leadership on from a draining node, which is about to
// leave, to an active voter that answers now. (Raft's own choice is the most up-to-date
// voter, which may be a stopped node whose log was current when it stopped: the transfer
// would then time out, round after round.)
func (n *Node) handOver(ctx context.Context, m clustermap.Map) (bool, error) {
	servers, err := n.ctl.Members()
	if err != nil {
		return false, err
	}
	for _, s := range servers {
		id := string(s.ID)
		nd, ok := m.Node(id)
		if id == n.cfg.ID || s.Suffrage != raftVoter || !ok || nd.State != placement.Active {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		meta, err := n.mux.Probe(pctx, string(s.Address), ControllerGroup)
		cancel()
		if err != nil || meta.ID != id {
			continue
		}
		n.logger.Info("this node is draining: handing the controller's leadership over", "to", id)
		return true, n.ctl.TransferTo(ctx, id, string(s.Address))
	}
	n.logger.Debug("this node is draining, but no active controller voter answers to take the controller's leadership over")
	return false, nil
}

// checkHealth asks every node's Raft port who it is; one silent for DeadNodeTimeout is
// marked dead (its replicas are re-created elsewhere), a dead one that answers again is
// active again.
func (n *Node) checkHealth(ctx context.Context, m clustermap.Map) error {
	now := time.Now()
	type answer struct {
		id string
		ok bool
	}
	answers := make(chan answer, len(m.Nodes))
	var wg sync.WaitGroup
	for _, nd := range m.Nodes {
		if nd.ID == n.cfg.ID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			meta, err := n.mux.Probe(pctx, nd.RaftAddr, ControllerGroup)
			cancel()
			answers <- answer{nd.ID, err == nil && meta.ID == nd.ID}
		}()
	}
	wg.Wait()
	close(answers)
	n.seenMu.Lock()
	for a := range answers {
		if a.ok {
			n.lastSeen[a.id] = now
		} else if _, ok := n.lastSeen[a.id]; !ok {
			n.lastSeen[a.id] = now // the timeout starts now
		}
	}
	n.lastSeen[n.cfg.ID] = now
	seen := maps.Clone(n.lastSeen)
	n.seenMu.Unlock()
	for _, nd := range m.Nodes {
		last := seen[nd.ID]
		switch {
		case nd.State != placement.Dead && now.Sub(last) > n.cfg.DeadNodeTimeout:
			n.logger.Warn("node unreachable: marking it dead; its replicas will be re-created elsewhere", "id", nd.ID, "silent_for", now.Sub(last).Round(time.Second))
			if err := n.ctl.Propose(ctx, clustermap.SetState(nd.ID, placement.Dead)); err != nil {
				return err
			}
		case nd.State == placement.Dead && last.Equal(now):
			n.logger.Info("dead node answers again: active", "id", nd.ID)
			if err := n.ctl.Propose(ctx, clustermap.SetState(nd.ID, placement.Active)); err != nil {
				return err
			}
		}
	}
	return nil
}

// step carries group g's move one step further. Every step reads the group's configuration
// from its leader first, so a step repeated after a crash does nothing twice:
//  1. add the new replica as a non-voter (its node opens it when the map names it);
//  2. wait until the group's leader has promoted it (it has caught up);
//  3. hand the leadership over if the leaving replica leads;
//  4. remove the leaving replica;
//  5. record the new voters in the map (the leaving node then closes and deletes it).
//
// A move whose new node is no longer active is rolled back: its replica is removed from
// the configuration and the move dropped from the map.
func (n *Node) step(ctx context.Context, m clustermap.Map, g clustermap.Group) error {
	mv := *g.Move
	n.moveStarted(g.ID)
	st, err := n.groupStatus(ctx, g.ID)
	if err != nil {
		return err
	}
	member := func(id string) (found, voter bool) {
		for _, x := range st.Members {
			if x.ID == id {
				return true, x.Voter
			}
		}
		return false, false
	}
	if mv.Add != "" {
		nd, ok := m.Node(mv.Add)
		found, voter := member(mv.Add)
		if !ok || nd.State != placement.Active {
			if found {
				return n.groupRemove(ctx, g.ID, mv.Add)
			}
			n.logger.Warn("move rolled back: its new node is not active", "move", mv.String())
			if err := n.ctl.Propose(ctx, clustermap.Abort(g.ID)); err != nil {
				return err
			}
			n.moveEnded(g.ID, "aborted")
			return nil
		}
		switch {
		case !found:
			if leaving, _ := member(mv.Remove); bugEarlyRemove && leaving {
				return n.groupRemove(ctx, g.ID, mv.Remove) // the planted bug (bug_earlyremove.go)
			}
			return n.groupJoin(ctx, g.ID, nd)
		case !voter:
			return fmt.Errorf("%s is catching up", mv.Add)
		}
	}
	if mv.Remove != "" {
		if found, _ := member(mv.Remove); found {
			if st.Leader != nil && st.Leader.ID == mv.Remove {
				return n.groupTransfer(ctx, g.ID, mv.Add)
			}
			return n.groupRemove(ctx, g.ID, mv.Remove)
		}
	}
	var voters []string
	for _, x := range st.Members {
		if x.Voter {
			voters = append(voters, x.ID)
		}
	}
	slices.Sort(voters)
	if err := n.ctl.Propose(ctx, clustermap.Finish(g.ID, voters)); err != nil {
		return err
	}
	n.moveEnded(g.ID, "finished")
	n.logger.Info("move finished", "move", mv.String(), "voters", voters)
	return nil
}

// groupStatus is group g's status as its leader reports it.
func (n *Node) groupStatus(ctx context.Context, g uint32) (httpapi.GroupStatus, error) {
	if r := n.slots[g].local(); r != nil && r.IsLeader() {
		st := r.Status()
		return httpapi.GroupStatus{ID: g, Role: st.Role, Members: st.Members, Leader: &httpapi.LeaderInfo{ID: st.LeaderID}}, nil
	}
	code, body, err := n.api.GroupCall(ctx, int(g), http.MethodGet, "/v1/cluster/status", nil, nil)
	if err != nil {
		return httpapi.GroupStatus{}, err
	}
	if code != http.StatusOK {
		return httpapi.GroupStatus{}, fmt.Errorf("status of group %d: %d %s", g, code, body)
	}
	var cs httpapi.ClusterStatus
	if err := json.Unmarshal(body, &cs); err != nil {
		return httpapi.GroupStatus{}, fmt.Errorf("status of group %d: %w", g, err)
	}
	for _, gs := range cs.Groups {
		if gs.ID == g {
			if gs.Role != "leader" {
				return gs, fmt.Errorf("%w: %s does not lead group %d", raftnode.ErrNotLeader, cs.ID, g)
			}
			return gs, nil
		}
	}
	return httpapi.GroupStatus{}, fmt.Errorf("status of group %d: not in %s's answer", g, cs.ID)
}

func (n *Node) groupJoin(ctx context.Context, g uint32, nd clustermap.Node) error {
	body, _ := json.Marshal(httpapi.JoinRequest{ID: nd.ID, RaftAddr: nd.RaftAddr, HTTPAddr: nd.HTTPAddr})
	return n.groupOp(ctx, g, http.MethodPost, "/v1/cluster/join", nil, body)
}

func (n *Node) groupRemove(ctx context.Context, g uint32, id string) error {
	return n.groupOp(ctx, g, http.MethodDelete, "/v1/cluster/nodes/"+url.PathEscape(id), nil, nil)
}

func (n *Node) groupTransfer(ctx context.Context, g uint32, to string) error {
	q := url.Values{}
	if to != "" {
		q.Set("to", to)
	}
	return n.groupOp(ctx, g, http.MethodPost, "/v1/cluster/transfer", q, nil)
}

func (n *Node) groupOp(ctx context.Context, g uint32, method, path string, q url.Values, body []byte) error {
	code, out, err := n.api.GroupCall(ctx, int(g), method, path, q, body)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("%s %s on group %d: %d %s", method, path, g, code, out)
	}
	return nil
}

// retireDrained removes drained nodes that hold nothing any more from the controller group
// and the map. A drained node learns that it hosts nothing from its copy of the map, which
// stops changing once it leaves the controller group (its groups' leaders stop sending to
// it as soon as they remove it, so it may never learn that from them): a node that answers
// and still has replicas open stays, up to retireGrace, until it has closed them.
func (n *Node) retireDrained(ctx context.Context, m clustermap.Map) error {
	for _, nd := range m.Nodes {
		if nd.State != placement.Draining || len(m.Hosts(nd.ID)) > 0 || nd.ID == n.cfg.ID {
			continue
		}
		if open := n.replicasOpen(ctx, nd); open > 0 {
			since, ok := n.retireSince[nd.ID]
			if !ok {
				n.retireSince[nd.ID], since = time.Now(), time.Now()
			}
			if time.Since(since) < retireGrace {
				n.logger.Debug("drained node still has replicas open: it stays in the controller group until it closes them", "id", nd.ID, "open", open)
				continue
			}
			n.logger.Warn("drained node still has replicas open after the grace period: removing it anyway", "id", nd.ID, "open", open, "grace", retireGrace)
		}
		delete(n.retireSince, nd.ID)
		if err := n.ctl.RemoveMember(ctx, nd.ID); err != nil && !errors.Is(err, raftnode.ErrNotLeader) {
			return fmt.Errorf("remove drained node %s from the controller: %w", nd.ID, err)
		}
		if err := n.ctl.Propose(ctx, clustermap.Forget(nd.ID)); err != nil {
			return err
		}
		n.logger.Info("drained node left the cluster", "id", nd.ID)
	}
	return nil
}

// replicasOpen is how many replicas node nd reports open (its status, over HTTP); 0 when it
// does not answer: a node that is down closes nothing, and waiting would not help.
func (n *Node) replicasOpen(ctx context.Context, nd clustermap.Node) int {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	code, body, err := n.api.NodeCall(cctx, http.MethodGet, nd.HTTPAddr, "/v1/cluster/status", nil)
	if err != nil || code != http.StatusOK {
		return 0
	}
	var cs httpapi.ClusterStatus
	if err := json.Unmarshal(body, &cs); err != nil || cs.ID != nd.ID {
		return 0
	}
	open := 0
	for _, g := range cs.Groups {
		if g.Role != "none" {
			open++
		}
	}
	return open
}

// fillControllerVoters keeps up to MaxControllerVoters active nodes voting in the
// controller group: a voter that is dead or draining is demoted, an active non-voter promoted.
func (n *Node) fillControllerVoters(ctx context.Context, m clustermap.Map) error {
	servers, err := n.ctl.Members()
	if err != nil {
		return err
	}
	state := func(id string) placement.NodeState {
		nd, ok := m.Node(id)
		if !ok {
			return placement.Dead
		}
		return nd.State
	}
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raftVoter && state(string(s.ID)) == placement.Active {
			voters++
		}
	}
	for _, s := range servers {
		id := string(s.ID)
		switch {
		case s.Suffrage == raftVoter && state(id) != placement.Active && id != n.cfg.ID && voters >= 3:
			n.logger.Info("controller voter is not active: demoting it", "id", id)
			return n.ctl.Demote(ctx, id)
		case s.Suffrage != raftVoter && state(id) == placement.Active && voters < clustermap.MaxControllerVoters:
			n.logger.Info("promoting a node to controller voter", "id", id)
			return n.ctl.Promote(ctx, id, string(s.Address))
		}
	}
	return nil
}

// balanceLeaders moves one group's leadership per round toward placement.Leaders' spread.
func (n *Node) balanceLeaders(ctx context.Context, m clustermap.Map) error {
	leaders := map[uint32]string{}
	for _, s := range n.slots {
		if id, _ := s.Leader(); id != "" {
			leaders[s.g] = id
		}
	}
	if len(leaders) < len(n.slots) {
		return nil
	}
	transfers, err := placement.Leaders(m.PlacementInput(n.cfg.MaxMovesPerNode), leaders)
	if err != nil || len(transfers) == 0 {
		return err
	}
	// A voter that did not answer the last probe would take the group's writes down for an
	// election timeout: only transfer to nodes seen this round.
	n.seenMu.Lock()
	seen := maps.Clone(n.lastSeen)
	n.seenMu.Unlock()
	for _, t := range transfers {
		if time.Since(seen[t.To]) > 2*time.Second {
			continue
		}
		n.logger.Info("moving a group's leadership", "group", t.Group, "from", t.From, "to", t.To)
		return n.groupTransfer(ctx, t.Group, t.To)
	}
	return nil
}
