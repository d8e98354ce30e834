package placement

import (
	"fmt"
	"slices"
	"testing"
)

// sim is a cluster whose moves are carried out in memory: a started move adds its Add node
// as a learner; a finished one promotes it and drops the Remove node.
type sim struct {
	t        testing.TB
	nodes    []Node
	groups   []Group
	replicas int
	k        int
	inFlight []Move
}

func newSim(t testing.TB, nodes, groups, replicas, zones int) *sim {
	s := &sim{t: t, replicas: replicas}
	for i := range nodes {
		s.nodes = append(s.nodes, Node{ID: fmt.Sprintf("n%04d", i), Zone: fmt.Sprintf("z%d", i%zones)})
	}
	for g := range groups {
		s.groups = append(s.groups, Group{ID: uint32(g)})
	}
	return s
}

func (s *sim) input() Input {
	return Input{Nodes: s.nodes, Groups: s.groups, Replicas: s.replicas, InFlight: s.inFlight, MaxMovesPerNode: s.k}
}

func (s *sim) setState(id string, st NodeState) {
	for i := range s.nodes {
		if s.nodes[i].ID == id {
			s.nodes[i].State = st
			return
		}
	}
	s.t.Fatalf("no node %s", id)
}

func (s *sim) group(id uint32) *Group {
	i, ok := slices.BinarySearchFunc(s.groups, id, func(g Group, id uint32) int { return int(g.ID) - int(id) })
	if !ok {
		s.t.Fatalf("no group %d", id)
	}
	return &s.groups[i]
}

func (s *sim) start(m Move) {
	g := s.group(m.Group)
	if m.Add != "" && !slices.Contains(g.Voters, m.Add) && !slices.Contains(g.Learners, m.Add) {
		g.Learners = append(g.Learners, m.Add)
	}
	s.inFlight = append(s.inFlight, m)
}

func (s *sim) finish(m Move) {
	g := s.group(m.Group)
	if m.Add != "" {
		g.Learners = slices.DeleteFunc(g.Learners, func(id string) bool { return id == m.Add })
		if !slices.Contains(g.Voters, m.Add) {
			g.Voters = append(g.Voters, m.Add)
		}
	}
	if m.Remove != "" {
		g.Voters = slices.DeleteFunc(g.Voters, func(id string) bool { return id == m.Remove })
		g.Learners = slices.DeleteFunc(g.Learners, func(id string) bool { return id == m.Remove })
	}
}

// round plans, checks the throttles over the moves in flight and the new ones, starts the
// new ones and finishes the in-flight moves that keep(i) selects (all when keep is nil).
func (s *sim) round(keep func(i int) bool) []Move {
	s.t.Helper()
	moves, err := Plan(s.input())
	if err != nil {
		s.t.Fatalf("Plan: %v", err)
	}
	for _, m := range moves {
		s.start(m)
	}
	s.checkThrottles()
	var still []Move
	for i, m := range s.inFlight {
		if keep != nil && keep(i) {
			still = append(still, m)
			continue
		}
		s.finish(m)
	}
	s.inFlight = still
	return moves
}

// converge runs rounds until Plan, called with nothing in flight, has nothing to start,
// and returns every move planned.
func (s *sim) converge(maxRounds int, keep func(round, i int) bool) []Move {
	s.t.Helper()
	var all []Move
	for r := 0; ; r++ {
		if r == maxRounds {
			s.t.Fatalf("no convergence after %d rounds (%d moves, %d in flight)", r, len(all), len(s.inFlight))
		}
		var k func(int) bool
		if keep != nil {
			k = func(i int) bool { return keep(r, i) }
		}
		idle := len(s.inFlight) == 0
		moves := s.round(k)
		all = append(all, moves...)
		if len(moves) == 0 && idle {
			return all
		}
	}
}

// checkThrottles fails when a group has two moves in flight or a live node takes part in
// more than its bound.
func (s *sim) checkThrottles() {
	s.t.Helper()
	k := s.k
	if k == 0 {
		k = DefaultMaxMovesPerNode
	}
	perGroup := map[uint32]int{}
	perNode := map[string]int{}
	for _, m := range s.inFlight {
		perGroup[m.Group]++
		if perGroup[m.Group] > 1 {
			s.t.Fatalf("group %d has %d moves in flight", m.Group, perGroup[m.Group])
		}
		for _, id := range []string{m.Add, m.Remove} {
			if id != "" {
				perNode[id]++
			}
		}
	}
	if k < 0 {
		return
	}
	for _, n := range s.nodes {
		if n.State != Dead && perNode[n.ID] > k {
			s.t.Fatalf("node %s takes part in %d moves, bound %d", n.ID, perNode[n.ID], k)
		}
	}
}

// loads returns the replicas per active node.
func (s *sim) loads() map[string]int {
	l := map[string]int{}
	for _, n := range s.nodes {
		if n.State == Active {
			l[n.ID] = 0
		}
	}
	for _, g := range s.groups {
		for _, id := range slices.Concat(g.Voters, g.Learners) {
			l[id]++
		}
	}
	return l
}

// check asserts the placement rules on a settled cluster: every group has min(R, active)
// voters on distinct active nodes, spread over zones as widely as the zones allow (given
// by maxPerZone), and every active node holds within one replica of the mean.
func (s *sim) check(maxPerZone int) {
	s.t.Helper()
	zone := map[string]string{}
	state := map[string]NodeState{}
	active := 0
	for _, n := range s.nodes {
		zone[n.ID], state[n.ID] = n.Zone, n.State
		if n.State == Active {
			active++
		}
	}
	want := min(s.replicas, active)
	for _, g := range s.groups {
		if len(g.Learners) != 0 || len(g.Voters) != want {
			s.t.Fatalf("group %d: voters %v learners %v, want %d voters", g.ID, g.Voters, g.Learners, want)
		}
		perZone := map[string]int{}
		for i, id := range g.Voters {
			if st, ok := state[id]; !ok || st != Active {
				s.t.Fatalf("group %d has a voter on %s, which is not active", g.ID, id)
			}
			if slices.Contains(g.Voters[:i], id) {
				s.t.Fatalf("group %d has two replicas on %s", g.ID, id)
			}
			perZone[zone[id]]++
			if perZone[zone[id]] > maxPerZone {
				s.t.Fatalf("group %d has %d replicas in zone %s: %v", g.ID, perZone[zone[id]], zone[id], g.Voters)
			}
		}
	}
	lo, hi := spread(s.loads())
	mean := float64(len(s.groups)*want) / float64(active)
	if float64(lo) < mean-1 || float64(hi) > mean+1 {
		s.t.Fatalf("replicas per node from %d to %d, mean %.2f", lo, hi, mean)
	}
}

func spread(loads map[string]int) (lo, hi int) {
	first := true
	for _, l := range loads {
		if first || l < lo {
			lo = l
		}
		if first || l > hi {
			hi = l
		}
		first = false
	}
	return lo, hi
}

// relocations counts the moves that take a replica from one node to another, and those
// among them that leave node from.
func relocations(moves []Move, from string) (total, off int) {
	for _, m := range moves {
		if m.Remove == "" {
			continue
		}
		total++
		if m.Remove == from {
			off++
		}
	}
	return total, off
}

// TestSimulation is the scale test: 1,000 nodes over 5 zones and 10,000 groups of 3
// replicas placed from nothing, then one node added, one drained and one dead, each
// settling within one replica of the mean with no group twice on a node or a zone, and
// each moving close to the fewest replicas it must.
func TestSimulation(t *testing.T) {
	scenario(t, 1000, 10000, 3, 5)
}

// TestSimulation_ZonePerNode runs the same scenario with every node its own zone, which
// takes the choices' many-zones path.
func TestSimulation_ZonePerNode(t *testing.T) {
	scenario(t, 200, 2000, 3, 200)
}

// scenario places groups from nothing, then adds, drains and kills a node, and balances
// leaders, checking the rules and the number of moves at every step.
func scenario(t *testing.T, nodes, groups, replicas, zones int) {
	s := newSim(t, nodes, groups, replicas, zones)

	// From nothing, every move at once (no per-node bound).
	s.k = -1
	moves := s.converge(20, nil)
	s.check(1)
	// One move per replica, plus the odd balance move.
	t.Logf("initial placement: %d moves", len(moves))
	if len(moves) < groups*replicas || len(moves) > groups*replicas+nodes/100 {
		t.Errorf("initial placement took %d moves, want %d (one per replica) plus at most %d", len(moves), groups*replicas, nodes/100)
	}

	// One node joins; moves run in rounds at the default bound.
	s.k = 0
	joiner := fmt.Sprintf("n%04d", nodes)
	s.nodes = append(s.nodes, Node{ID: joiner, Zone: "z0"})
	moves = s.converge(200, nil)
	s.check(1)
	total, _ := relocations(moves, "")
	ideal := float64(groups*replicas) / float64(nodes+1)
	need := groups * replicas / (nodes + 1) // the joiner must reach the floor of the mean
	t.Logf("join: %d moves (ideal %.1f, need %d)", total, ideal, need)
	if total > int(1.5*ideal) || total < need || total != len(moves) {
		t.Errorf("join moved %d replicas (%d moves), want between %d and %.0f", total, len(moves), need, 1.5*ideal)
	}
	if got := s.loads()[joiner]; got < need {
		t.Errorf("the new node holds %d replicas, want at least %d", got, need)
	}

	// One node drains: only its replicas move, plus at most a few for balance.
	drained := fmt.Sprintf("n%04d", nodes/2)
	held := s.loads()[drained]
	s.setState(drained, Draining)
	moves = s.converge(200, nil)
	total, off := relocations(moves, drained)
	t.Logf("drain: %d moves, %d off the drained node which held %d", total, off, held)
	if off != held || total-off > 5 || total != len(moves) {
		t.Errorf("drain: %d moves of which %d off the node holding %d, want %d plus at most 5", total, off, held, held)
	}
	s.nodes = slices.DeleteFunc(s.nodes, func(n Node) bool { return n.ID == drained })
	s.check(1)
	if moves, _ := Plan(s.input()); len(moves) != 0 {
		t.Errorf("after the drained node left: %v", moves)
	}

	// One node dies: its replicas are re-created elsewhere, plus at most a few moves.
	dead := fmt.Sprintf("n%04d", nodes/4)
	held = s.loads()[dead]
	// Its groups' other replicas, which the new ones copy from, are spread over many
	// nodes rather than a few (at most 2 per group).
	peers := map[string]bool{}
	for _, g := range s.groups {
		if slices.Contains(g.Voters, dead) {
			for _, id := range g.Voters {
				peers[id] = id != dead
			}
		}
	}
	delete(peers, dead)
	if len(peers) < held {
		t.Errorf("the dead node's %d groups share only %d other nodes", held, len(peers))
	}
	s.setState(dead, Dead)
	moves = s.converge(200, nil)
	total, off = relocations(moves, dead)
	t.Logf("death: %d moves, %d off the dead node which held %d", total, off, held)
	if off != held || total-off > 5 || total != len(moves) {
		t.Errorf("death: %d moves of which %d off the node holding %d, want %d plus at most 5", total, off, held, held)
	}
	s.check(1)

	// Leaders, all on each group's lowest-ID voter, spread within one of the mean.
	leaders := map[uint32]string{}
	for _, g := range s.groups {
		leaders[g.ID] = slices.Min(g.Voters)
	}
	in := s.input()
	calls := settleLeaders(t, in, leaders)
	t.Logf("leaders: settled in %d calls", calls)
	checkLeaders(t, in, leaders)
}
