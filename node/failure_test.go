package node

import (
	"slices"
	"testing"
	"time"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/placement"
)

// startSettled starts n nodes (n1 bootstraps) with groups of 3 replicas and waits until
// placement settled.
func startSettled(t *testing.T, groups int, ids ...string) *testCluster {
	t.Helper()
	c := newTestCluster(t, groups)
	c.start(ids[0], "", 3)
	c.waitMap(ids[0], 10*time.Second, "the cluster created", func(m clustermap.Map) bool { return m.Initialized() })
	for _, id := range ids[1:] {
		c.start(id, "", 3)
	}
	c.waitMap(ids[0], 60*time.Second, "every group on 3 nodes", func(m clustermap.Map) bool {
		if !settled(3)(m) {
			return false
		}
		for _, id := range ids { // the last joiner holds replicas too
			if m.ReplicasOn(id) == 0 {
				return false
			}
		}
		return true
	})
	return c
}

// TestNodes_DeadNodeReplaced: a node that stops answering for DeadNodeTimeout is marked
// dead and its replicas are re-created on the survivors; when it comes back it is active
// again and deletes the replicas it no longer holds.
func TestNodes_DeadNodeReplaced(t *testing.T) {
	c := startSettled(t, 4, "n1", "n2", "n3", "n4")
	c.stop("n4")
	m := c.waitMap("n1", 60*time.Second, "n4 dead and its replicas re-created", func(m clustermap.Map) bool {
		nd, _ := m.Node("n4")
		return nd.State == placement.Dead && settled(3)(m) && m.ReplicasOn("n4") == 0
	})
	for _, g := range m.Groups {
		if slices.Contains(g.Voters, "n4") {
			t.Errorf("group %d still lists the dead n4: %v", g.ID, g.Voters)
		}
	}
	c.start("n4", "", 3)
	c.waitMap("n1", 30*time.Second, "n4 active again", func(m clustermap.Map) bool {
		nd, _ := m.Node("n4")
		return nd.State == placement.Active
	})
	waitFor(t, 30*time.Second, "the returning n4 to drop its old replicas or get new ones as the map says", func() bool {
		m := c.nodes["n1"].Map()
		return c.hostedCounts()["n4"] == len(m.Hosts("n4"))
	})
}

// TestNodes_ControllerFailoverMidMove: the controller's leader stops while a drain's moves
// are in progress; the next controller leader finds the moves in the map and finishes them.
func TestNodes_ControllerFailoverMidMove(t *testing.T) {
	c := startSettled(t, 4, "n1", "n2", "n3", "n4")
	leader, _ := c.nodes["n1"].ControllerLeader()
	var other string
	for _, id := range []string{"n2", "n3", "n4"} {
		if id != leader {
			other = id
			break
		}
	}
	drainNode := other
	if err := c.nodes[leader].Drain(t.Context(), drainNode); err != nil {
		t.Fatalf("drain %s on the controller leader %s: %v", drainNode, leader, err)
	}
	c.waitMap(leader, 30*time.Second, "a move in progress", func(m clustermap.Map) bool { return len(m.Moves()) > 0 })
	c.stop(leader)
	var watcher string
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		if id != leader && id != drainNode {
			watcher = id
			break
		}
	}
	c.waitMap(watcher, 60*time.Second, drainNode+" drained by the next controller leader", func(m clustermap.Map) bool {
		_, there := m.Node(drainNode)
		return !there && len(m.Moves()) == 0
	})
	if l, _ := c.nodes[watcher].ControllerLeader(); l == leader || l == "" {
		t.Errorf("controller leader after the stop: %q", l)
	}
}
