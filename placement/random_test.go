package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomInput builds a small cluster in an arbitrary state: nodes in any state and zone,
// groups with any replicas (some on unknown nodes), some moves in flight.
func randomInput(rng *rand.Rand) Input {
	in := Input{Replicas: 1 + rng.IntN(4), MaxMovesPerNode: rng.IntN(4) - 1}
	nodes := 1 + rng.IntN(12)
	zones := 1 + rng.IntN(5)
	var ids []string
	for i := range nodes {
		n := Node{ID: fmt.Sprintf("n%d", i), Zone: fmt.Sprintf("z%d", rng.IntN(zones))}
		switch rng.IntN(6) {
		case 0:
			n.State = Draining
		case 1:
			n.State = Dead
		}
		in.Nodes = append(in.Nodes, n)
		ids = append(ids, n.ID)
	}
	ids = append(ids, "gone")
	for g := range 1 + rng.IntN(20) {
		grp := Group{ID: uint32(g * 3)}
		for _, i := range rng.Perm(len(ids))[:rng.IntN(min(len(ids), 6))] {
			if rng.IntN(4) == 0 {
				grp.Learners = append(grp.Learners, ids[i])
			} else {
				grp.Voters = append(grp.Voters, ids[i])
			}
		}
		if rng.IntN(4) == 0 {
			m := Move{Group: grp.ID, Add: ids[rng.IntN(len(ids))]}
			if members := slices.Concat(grp.Voters, grp.Learners); len(members) > 0 && rng.IntN(2) == 0 {
				m.Remove = members[rng.IntN(len(members))]
			}
			if m.Add != m.Remove {
				in.InFlight = append(in.InFlight, m)
			}
		}
		in.Groups = append(in.Groups, grp)
	}
	return in
}

// checkSafe asserts the rules every single Plan result keeps, whatever the input.
func checkSafe(t *testing.T, in Input, moves []Move) {
	t.Helper()
	state := map[string]NodeState{}
	for _, n := range in.Nodes {
		state[n.ID] = n.State
	}
	members := map[uint32][]string{}
	for _, g := range in.Groups {
		members[g.ID] = slices.Concat(g.Voters, g.Learners)
	}
	perGroup := map[uint32]int{}
	perNode := map[string]int{}
	for _, m := range in.InFlight {
		perGroup[m.Group]++
		for _, id := range []string{m.Add, m.Remove} {
			if id != "" {
				perNode[id]++
			}
		}
		if m.Add != "" && !slices.Contains(members[m.Group], m.Add) {
			members[m.Group] = append(members[m.Group], m.Add)
		}
		members[m.Group] = slices.DeleteFunc(members[m.Group], func(id string) bool { return id == m.Remove })
	}
	k := in.MaxMovesPerNode
	if k == 0 {
		k = DefaultMaxMovesPerNode
	}
	for _, m := range moves {
		if perGroup[m.Group]++; perGroup[m.Group] > 1 {
			t.Fatalf("%v: group %d already has a move", m, m.Group)
		}
		if m.Add == "" && m.Remove == "" {
			t.Fatalf("%v: an empty move", m)
		}
		if m.Add != "" {
			if st, ok := state[m.Add]; !ok || st != Active {
				t.Fatalf("%v: adds to %s, which is not active", m, m.Add)
			}
			if slices.Contains(members[m.Group], m.Add) {
				t.Fatalf("%v: the group already has a replica on %s", m, m.Add)
			}
		}
		if m.Remove != "" && !slices.Contains(members[m.Group], m.Remove) {
			t.Fatalf("%v: the group has no replica on %s (%v)", m, m.Remove, members[m.Group])
		}
		for _, id := range []string{m.Add, m.Remove} {
			if id == "" {
				continue
			}
			perNode[id]++
			if st, ok := state[id]; ok && st != Dead && k >= 0 && perNode[id] > k {
				t.Fatalf("%v: node %s takes part in %d moves, bound %d", m, id, perNode[id], k)
			}
		}
		live := 0
		for _, id := range members[m.Group] {
			if state[id] == Active && id != m.Remove {
				live++
			}
		}
		if m.Add == "" && live == 0 {
			t.Fatalf("%v: removes the last replica on an active node", m)
		}
	}
}

// TestPlan_Random throws arbitrary cluster states at Plan and Leaders: they never panic,
// every result keeps the safety rules and throttles, and carrying the moves out converges.
func TestPlan_Random(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 500 {
		in := randomInput(rng)
		moves, err := Plan(in)
		if err != nil {
			t.Fatalf("case %d: Plan: %v\n%+v", i, err, in)
		}
		checkSafe(t, in, moves)
		leaders := map[uint32]string{}
		for _, g := range in.Groups {
			if len(g.Voters) > 0 {
				leaders[g.ID] = g.Voters[rng.IntN(len(g.Voters))]
			}
		}
		if _, err := Leaders(in, leaders); err != nil {
			t.Fatalf("case %d: Leaders: %v", i, err)
		}

		// Carry everything out round by round; Plan must settle.
		s := &sim{t: t, nodes: in.Nodes, replicas: in.Replicas, k: in.MaxMovesPerNode, inFlight: slices.Clone(in.InFlight)}
		for _, g := range in.Groups {
			s.groups = append(s.groups, Group{ID: g.ID, Voters: slices.Clone(g.Voters), Learners: slices.Clone(g.Learners)})
		}
		slices.SortFunc(s.groups, func(a, b Group) int { return int(a.ID) - int(b.ID) })
		for r := 0; ; r++ {
			if r == 200 {
				t.Fatalf("case %d: no convergence after %d rounds\n%+v", i, r, in)
			}
			idle := len(s.inFlight) == 0
			cur := s.input()
			moves, err := Plan(cur)
			if err != nil {
				t.Fatalf("case %d round %d: %v", i, r, err)
			}
			checkSafe(t, cur, moves)
			if idle && len(moves) == 0 {
				break
			}
			for _, m := range moves {
				s.start(m)
			}
			for _, m := range s.inFlight {
				s.finish(m)
			}
			s.inFlight = nil
		}
		checkSettled(t, i, s)
	}
}

// checkSettled asserts that every group that still has a quorum ended with min(R, active)
// replicas, all on active nodes.
func checkSettled(t *testing.T, i int, s *sim) {
	t.Helper()
	state := map[string]NodeState{}
	active := 0
	for _, n := range s.nodes {
		state[n.ID] = n.State
		if n.State == Active {
			active++
		}
	}
	want := min(s.replicas, active)
	for _, g := range s.groups {
		alive := 0
		for _, id := range g.Voters {
			if st, ok := state[id]; ok && st != Dead {
				alive++
			}
		}
		if len(g.Voters) > 0 && alive < len(g.Voters)/2+1 || active == 0 {
			continue // no quorum: nothing may change
		}
		// A learner left over from outside any move counts as a replica (promoting it is
		// the controller's business).
		members := slices.Concat(g.Voters, g.Learners)
		if len(members) != want {
			t.Fatalf("case %d: group %d settled with voters %v learners %v, want %d replicas", i, g.ID, g.Voters, g.Learners, want)
		}
		for _, id := range members {
			if st, ok := state[id]; !ok || st != Active {
				t.Fatalf("case %d: group %d settled with a voter on %s (%v)", i, g.ID, id, st)
			}
		}
	}
}

// FuzzPlan feeds Plan arbitrary cluster states (built from the two seeds) and checks that
// every result keeps the safety rules: go test ./placement -fuzz FuzzPlan.
func FuzzPlan(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(7), uint64(11))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		in := randomInput(rand.New(rand.NewPCG(a, b)))
		moves, err := Plan(in)
		if err != nil {
			t.Fatalf("Plan: %v\n%+v", err, in)
		}
		checkSafe(t, in, moves)
	})
}
