package placement

import "testing"

// settled returns a placed and balanced cluster of the given size.
func settled(b testing.TB, nodes, groups, replicas, zones int) *sim {
	s := newSim(b, nodes, groups, replicas, zones)
	s.k = -1
	s.converge(20, nil)
	s.k = 0
	return s
}

// BenchmarkPlan10k plans for 1,000 nodes over 5 zones and 10,000 groups of 3 replicas
// right after a node joined (so Plan has moves to choose at the default bound).
func BenchmarkPlan10k(b *testing.B) {
	s := settled(b, 1000, 10000, 3, 5)
	s.nodes = append(s.nodes, Node{ID: "n1000", Zone: "z0"})
	in := s.input()
	b.ResetTimer()
	for b.Loop() {
		moves, err := Plan(in)
		if err != nil || len(moves) == 0 {
			b.Fatalf("Plan: %d moves, %v", len(moves), err)
		}
	}
}

// BenchmarkPlan10kSettled plans for the same cluster with nothing to do.
func BenchmarkPlan10kSettled(b *testing.B) {
	in := settled(b, 1000, 10000, 3, 5).input()
	b.ResetTimer()
	for b.Loop() {
		if moves, err := Plan(in); err != nil || len(moves) != 0 {
			b.Fatalf("Plan: %v, %v", moves, err)
		}
	}
}
