package node

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/raftnode"
)

// reconcileLoop keeps this node's replicas as the map places them: it opens the replicas
// placed on it and closes (and deletes) those the map no longer places here. The map only
// drops a replica once it left its group's Raft configuration.
func (n *Node) reconcileLoop() {
	defer n.wg.Done()
	for {
		m, changed := n.ctl.Map()
		n.reconcile(m)
		select {
		case <-n.ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

func (n *Node) groupDir(g uint32) string {
	return filepath.Join(n.cfg.DataDir, fmt.Sprintf("group-%d", g))
}

// openExisting opens, at start, every replica this node has data for: after a restart the
// controller's replica may not know the map until it hears from its leader, and the groups
// must not wait for it. The reconciler closes those the map no longer places here.
func (n *Node) openExisting() {
	n.openMu.Lock()
	defer n.openMu.Unlock()
	for _, s := range n.slots {
		if !raftnode.HasLog(n.groupDir(s.g)) {
			continue
		}
		if err := n.openReplica(s.g, "", false); err != nil {
			n.logger.Error("cannot open this node's replica", "group", s.g, "err", err)
		}
	}
}

// openReplica opens this node's replica of group g. Called with openMu held.
func (n *Node) openReplica(g uint32, shard string, bootstrap bool) error {
	rcfg := n.replicaConfig(g)
	rcfg.Bootstrap, rcfg.ShardID = bootstrap, shard
	r, err := raftnode.Open(rcfg, raftnode.NewTCPTransport(n.mux, g, n.logger))
	if err != nil {
		return err
	}
	n.slots[g].rep.Store(r)
	n.logger.Info("opened replica", "group", g, "shard_id", shard)
	return nil
}

// replicaConfig is the configuration of this node's replica of group g, but for Bootstrap
// and ShardID.
func (n *Node) replicaConfig(g uint32) raftnode.Config {
	rcfg := raftnode.DefaultConfig()
	if n.cfg.Replica != nil {
		rcfg = n.cfg.Replica(g)
	}
	rcfg.ID, rcfg.Group, rcfg.DataDir = n.cfg.ID, g, n.groupDir(g)
	if rcfg.Logger == nil {
		rcfg.Logger = n.logger
	}
	rcfg.Store, rcfg.Probe, rcfg.GeoIP = n.store, n.mux.Probe, n.cfg.GeoIP
	return rcfg
}

func (n *Node) reconcile(m clustermap.Map) {
	if !m.Initialized() {
		return
	}
	n.catalogFor(m)
	if len(m.Groups) != len(n.slots) {
		n.fail(fmt.Errorf("the cluster map has %d groups and this node %d (%s): the number of groups is fixed when the cluster is created", len(m.Groups), len(n.slots), filepath.Join(n.cfg.DataDir, clusterFile)))
		return
	}
	n.openMu.Lock()
	defer n.openMu.Unlock()
	if n.ctx.Err() != nil {
		return
	}
	hosted := m.Hosts(n.cfg.ID)
	for _, g := range hosted {
		grp := m.Groups[g]
		if n.cfg.ShardIDSet && n.groupShard(int(g), len(m.Groups)) != grp.Shard {
			n.fail(fmt.Errorf("--shard-id %q gives group %d the shard ID %q, which differs from this group's shard ID %q: a shard ID never changes",
				n.cfg.ShardID, g, n.groupShard(int(g), len(m.Groups)), grp.Shard))
			return
		}
		s := n.slots[g]
		if s.local() != nil {
			continue
		}
		// Only the node that created the cluster forms each group, once: every other
		// replica is added by its group's leader and catches up from it.
		// Only a process that created the map in this run may form groups: a restarted
		// --bootstrap node replays the map from its start (every group on it alone) and
		// must not form a second, separate group.
		bootstrap := n.created.Load() && slices.Equal(grp.Voters, []string{n.cfg.ID}) && grp.Move == nil
		if err := n.openReplica(g, grp.Shard, bootstrap); err != nil {
			n.logger.Error("cannot open a replica the map places here", "group", g, "err", err)
		}
	}
	if _, known := m.Node(n.cfg.ID); !known {
		return // not in the map (yet, or any more): keep what is here
	}
	for _, s := range n.slots {
		if slices.Contains(hosted, s.g) {
			continue
		}
		if r := s.local(); r != nil {
			// The map may be older than the group (a restart restores an old snapshot of
			// it): drop the replica only once the group's leader confirms this node left.
			ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
			st, err := n.groupStatus(ctx, s.g)
			cancel()
			if err != nil || isMember(st, n.cfg.ID) {
				continue
			}
			s.rep.Store(nil)
			ctx, cancel = context.WithTimeout(n.ctx, 10*time.Second)
			err = r.Close(ctx)
			cancel()
			if err != nil {
				n.logger.Warn("closing a replica that left its group", "group", s.g, "err", err)
			}
			if err := removeDir(n.groupDir(s.g)); err != nil {
				n.logger.Warn("cannot delete the data of a replica that left its group", "group", s.g, "err", err)
			} else {
				n.logger.Info("closed a replica that left its group and deleted its data", "group", s.g)
			}
		}
	}
}

func isMember(st httpapi.GroupStatus, id string) bool {
	for _, m := range st.Members {
		if m.ID == id {
			return true
		}
	}
	return false
}

// leaderLoop learns the leaders of the groups this node hosts no replica of, asking their
// voters over the meta channel, so requests for them go straight to the leader.
func (n *Node) leaderLoop() {
	defer n.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	turn := 0
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		turn++
		m, _ := n.ctl.Map()
		for _, g := range m.Groups {
			if int(g.ID) >= len(n.slots) {
				break
			}
			s := n.slots[g.ID]
			if r := s.local(); r != nil {
				if _, _, err := r.Leader(); err == nil {
					continue // the local replica knows its leader
				}
			}
			n.findLeader(n.ctx, m, g, turn)
		}
	}
}

// findLeader asks group g's voters and the new replica of its move in progress, over the
// meta channel, who leads it, starting at the turn-th, and records the first answer in the
// group's slot. (A move off a one-replica group removes its only voter: until the move is
// recorded as finished, only the new replica knows the leader.)
func (n *Node) findLeader(ctx context.Context, m clustermap.Map, g clustermap.Group, turn int) (id, raftAddr string) {
	ask := g.Voters
	if g.Move != nil && g.Move.Add != "" && !slices.Contains(ask, g.Move.Add) {
		ask = append(slices.Clone(ask), g.Move.Add)
	}
	for i := range ask {
		v := ask[(turn+i)%len(ask)]
		nd, ok := m.Node(v)
		if !ok || v == n.cfg.ID {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		meta, err := n.mux.Probe(pctx, nd.RaftAddr, g.ID)
		cancel()
		if err == nil && meta.LeaderRaft != "" {
			n.slots[g.ID].setLeader(meta.LeaderID, meta.LeaderRaft)
			return meta.LeaderID, meta.LeaderRaft
		}
	}
	return "", ""
}
