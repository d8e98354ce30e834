package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// busyCluster returns a settled cluster in the middle of several changes: two nodes joined,
// one draining, one dead, and some moves in flight.
func busyCluster(t *testing.T, zones int) *sim {
	s := newSim(t, 60, 600, 3, zones)
	s.k = -1
	s.converge(20, nil)
	s.k = 0
	s.nodes = append(s.nodes, Node{ID: "n0060", Zone: "z1"}, Node{ID: "n0061", Zone: "z3"})
	s.setState("n0007", Draining)
	s.setState("n0013", Dead)
	s.round(func(i int) bool { return i%3 != 0 }) // a third of the first moves finish
	if len(s.inFlight) == 0 {
		t.Fatal("no move in flight to test with")
	}
	return s
}

// shuffled returns a deep copy of in with every slice in a random order.
func shuffled(in Input, rng *rand.Rand) Input {
	out := in
	out.Nodes = slices.Clone(in.Nodes)
	rng.Shuffle(len(out.Nodes), func(i, j int) { out.Nodes[i], out.Nodes[j] = out.Nodes[j], out.Nodes[i] })
	out.Groups = make([]Group, len(in.Groups))
	for i, g := range in.Groups {
		g.Voters, g.Learners = slices.Clone(g.Voters), slices.Clone(g.Learners)
		rng.Shuffle(len(g.Voters), func(i, j int) { g.Voters[i], g.Voters[j] = g.Voters[j], g.Voters[i] })
		rng.Shuffle(len(g.Learners), func(i, j int) { g.Learners[i], g.Learners[j] = g.Learners[j], g.Learners[i] })
		out.Groups[i] = g
	}
	rng.Shuffle(len(out.Groups), func(i, j int) { out.Groups[i], out.Groups[j] = out.Groups[j], out.Groups[i] })
	out.InFlight = slices.Clone(in.InFlight)
	rng.Shuffle(len(out.InFlight), func(i, j int) { out.InFlight[i], out.InFlight[j] = out.InFlight[j], out.InFlight[i] })
	return out
}

func TestPlan_Deterministic(t *testing.T) {
	for _, zones := range []int{4, 60} { // 60: one zone per node, the many-zones path
		t.Run(fmt.Sprintf("%d zones", zones), func(t *testing.T) { testDeterministic(t, zones) })
	}
}

func testDeterministic(t *testing.T, zones int) {
	s := busyCluster(t, zones)
	in := s.input()
	want, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("Plan has nothing to do; the test would prove nothing")
	}
	leaders := map[uint32]string{}
	for _, g := range in.Groups {
		leaders[g.ID] = g.Voters[len(g.Voters)-1]
	}
	wantT, err := Leaders(in, leaders)
	if err != nil || len(wantT) == 0 {
		t.Fatalf("Leaders = %v, %v; want some transfers", wantT, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		sh := shuffled(in, rng)
		got, err := Plan(sh)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("shuffle %d: Plan = %v, %v\nwant %v", i, got, err, want)
		}
		gotT, err := Leaders(sh, leaders)
		if err != nil || !slices.Equal(gotT, wantT) {
			t.Fatalf("shuffle %d: Leaders = %v, %v\nwant %v", i, gotT, err, wantT)
		}
	}
	// Plan must not have changed its input.
	if again, _ := Plan(in); !slices.Equal(again, want) {
		t.Fatalf("a second Plan of the same input = %v, want %v", again, want)
	}
}

// TestPlan_Throttles runs placements, joins and drains with moves finishing at different
// times and checks, every round, that no group has two moves in flight and no node takes
// part in more than K; it also checks that the bound was reached, so that it was tested.
func TestPlan_Throttles(t *testing.T) {
	for _, k := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("K=%d", k), func(t *testing.T) {
			s := newSim(t, 40, 300, 3, 4)
			s.k = k
			peak := 0
			// Moves finish unevenly: some stay in flight for several rounds.
			keep := func(r, i int) bool {
				if n := s.busiest(); n > peak {
					peak = n
				}
				return (r*7+i*3)%5 < 2
			}
			s.converge(2000, keep)
			s.check(1)
			s.nodes = append(s.nodes, Node{ID: "n0040", Zone: "z0"}, Node{ID: "n0041", Zone: "z1"})
			s.setState("n0003", Draining)
			s.setState("n0004", Draining)
			s.converge(2000, keep)
			s.nodes = slices.DeleteFunc(s.nodes, func(n Node) bool { return n.State == Draining })
			s.check(1)
			if peak != k {
				t.Fatalf("the busiest node took part in %d moves at once, want the bound %d reached", peak, k)
			}
		})
	}
}

// busiest returns the most moves in flight on one node.
func (s *sim) busiest() int {
	per := map[string]int{}
	most := 0
	for _, m := range s.inFlight {
		for _, id := range []string{m.Add, m.Remove} {
			if id != "" {
				per[id]++
				most = max(most, per[id])
			}
		}
	}
	return most
}

// TestPlan_InFlightCounted: moves in flight count as done and against the bounds.
func TestPlan_InFlightCounted(t *testing.T) {
	in := Input{
		Nodes: []Node{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}},
		Groups: []Group{
			{ID: 1, Voters: []string{"a", "b"}, Learners: []string{"c"}},
			{ID: 2, Voters: []string{"a", "b"}},
			{ID: 3, Voters: []string{"a", "b"}},
		},
		Replicas: 3,
		InFlight: []Move{{Group: 1, Add: "c"}},
	}
	moves, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	// Group 1 is busy. Group 2 goes to d, the least loaded; for group 3, c and d are then
	// equally loaded and both below the bound (K=2), and the group's seed picks one.
	if len(moves) != 2 || moves[0] != (Move{Group: 2, Add: "d"}) ||
		moves[1].Group != 3 || (moves[1].Add != "c" && moves[1].Add != "d") || moves[1].Remove != "" {
		t.Fatalf("Plan = %v, want [g2: +d g3: +c or +d]", moves)
	}
	// With K=1, c is at its bound (the move in flight) and d reaches it with group 2.
	in.MaxMovesPerNode = 1
	moves, err = Plan(in)
	if want := []Move{{Group: 2, Add: "d"}}; err != nil || !slices.Equal(moves, want) {
		t.Fatalf("K=1: Plan = %v, %v; want %v", moves, err, want)
	}
}
