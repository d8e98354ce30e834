package placement

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// cluster builds a sim from "id/zone" node specs and a number of empty groups.
func clusterOf(t *testing.T, replicas, groups int, nodes ...string) *sim {
	s := &sim{t: t, replicas: replicas}
	for _, spec := range nodes {
		id, zone, _ := strings.Cut(spec, "/")
		s.nodes = append(s.nodes, Node{ID: id, Zone: zone})
	}
	for g := range groups {
		s.groups = append(s.groups, Group{ID: uint32(g)})
	}
	return s
}

// zoned returns n node specs "<prefix><i>/<zone>".
func zoned(prefix, zone string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%d/%s", prefix, i, zone))
	}
	return out
}

func TestPlan_Small(t *testing.T) {
	cases := []struct {
		name       string
		replicas   int
		groups     int
		nodes      []string
		maxPerZone int
		wantVoters int
	}{
		{"3 nodes R=3", 3, 4, []string{"a/z1", "b/z2", "c/z3"}, 1, 3},
		{"2 nodes R=3", 3, 5, []string{"a/z1", "b/z2"}, 1, 2},
		{"one zone", 3, 10, zoned("n", "z", 6), 3, 3},
		{"no zones", 3, 7, []string{"a", "b", "c", "d"}, 3, 3},
		{"two zones R=3", 3, 8, slices.Concat(zoned("a", "z1", 2), zoned("b", "z2", 2)), 2, 3},
		{"uneven zones with room", 3, 14, slices.Concat([]string{"a/z1", "b/z2"}, zoned("c", "z3", 4), zoned("d", "z4", 4), zoned("e", "z5", 4)), 1, 3},
		{"R=1", 1, 10, []string{"a/z1", "b/z2", "c/z1", "d/z2"}, 1, 1},
		{"R=5 over 3 zones", 5, 9, slices.Concat(zoned("a", "z1", 3), zoned("b", "z2", 3), zoned("c", "z3", 3)), 2, 5},
		{"zone per node", 3, 40, []string{"a/a", "b/b", "c/c", "d/d", "e/e", "f/f", "g/g", "h/h", "i/i", "j/j", "k/k", "l/l", "m/m", "n/n", "o/o", "p/p", "q/q", "r/r"}, 1, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := clusterOf(t, tc.replicas, tc.groups, tc.nodes...)
			s.converge(100, nil)
			s.check(tc.maxPerZone)
			for _, g := range s.groups {
				if len(g.Voters) != tc.wantVoters {
					t.Fatalf("group %d has voters %v, want %d", g.ID, g.Voters, tc.wantVoters)
				}
			}
			if moves, err := Plan(s.input()); err != nil || len(moves) != 0 {
				t.Fatalf("settled cluster: Plan = %v, %v; want nothing", moves, err)
			}
		})
	}
}

// TestPlan_ZonesBeatBalance: with 3 replicas over 3 zones, one of them a single node, that
// node must hold a replica of every group; the rest stays balanced within its zone.
func TestPlan_ZonesBeatBalance(t *testing.T) {
	s := clusterOf(t, 3, 7, slices.Concat([]string{"solo/z1"}, zoned("b", "z2", 3), zoned("c", "z3", 3))...)
	s.converge(100, nil)
	loads := s.loads()
	if loads["solo"] != 7 {
		t.Errorf("the only node of zone z1 holds %d replicas, want all 7", loads["solo"])
	}
	for _, prefix := range []string{"b", "c"} {
		for i := range 3 {
			if l := loads[fmt.Sprintf("%s%d", prefix, i)]; l < 2 || l > 3 {
				t.Errorf("node %s%d holds %d replicas, want 2 or 3 (7 over 3)", prefix, i, l)
			}
		}
	}
	zone := map[string]string{}
	for _, n := range s.nodes {
		zone[n.ID] = n.Zone
	}
	for _, g := range s.groups {
		seen := map[string]bool{}
		for _, id := range g.Voters {
			if seen[zone[id]] {
				t.Fatalf("group %d has two replicas in zone %s: %v", g.ID, zone[id], g.Voters)
			}
			seen[zone[id]] = true
		}
	}
}

// TestPlan_JoinSmall: a node joining a 3-node cluster with one group of 3 moves nothing:
// every node is already within one replica of the mean (3/4).
func TestPlan_JoinSmall(t *testing.T) {
	s := clusterOf(t, 3, 1, "a/z1", "b/z2", "c/z3")
	s.converge(10, nil)
	s.nodes = append(s.nodes, Node{ID: "d", Zone: "z1"})
	if moves := s.converge(10, nil); len(moves) != 0 {
		t.Fatalf("join moved %v, want nothing", moves)
	}
	s.check(1)

	// With R=1 and four groups on three nodes, the joiner takes exactly one.
	s = clusterOf(t, 1, 4, "a/z1", "b/z2", "c/z3")
	s.converge(10, nil)
	s.nodes = append(s.nodes, Node{ID: "d", Zone: "z1"})
	moves := s.converge(10, nil)
	if len(moves) != 1 || moves[0].Add != "d" || moves[0].Remove == "" {
		t.Fatalf("join moved %v, want one replica moved to d", moves)
	}
	s.check(1)
}

// TestPlan_Shrink: groups created with a voter on every node (5 of 5) shrink to 3, spread
// over the zones and balanced, one removal per group at a time.
func TestPlan_Shrink(t *testing.T) {
	s := clusterOf(t, 3, 5, "a/z1", "b/z2", "c/z3", "d/z4", "e/z5")
	for i := range s.groups {
		s.groups[i].Voters = []string{"a", "b", "c", "d", "e"}
	}
	moves := s.converge(20, nil)
	s.check(1)
	for _, m := range moves {
		if m.Add != "" {
			t.Errorf("shrinking added a replica: %v", m)
		}
	}
	if len(moves) != 10 {
		t.Errorf("shrinking took %d moves, want 10 (two per group)", len(moves))
	}
}

// TestPlan_Respread: groups placed before zones were labelled, all in one zone, get spread.
func TestPlan_Respread(t *testing.T) {
	s := clusterOf(t, 3, 6, slices.Concat(zoned("a", "z1", 3), zoned("b", "z2", 3), zoned("c", "z3", 3))...)
	for i := range s.groups {
		s.groups[i].Voters = []string{"a0", "a1", "a2"}
	}
	s.converge(50, nil)
	s.check(1)
}

// TestPlan_DeadAndDraining covers the order of repairs and the cases with too few nodes.
func TestPlan_DeadAndDraining(t *testing.T) {
	t.Run("dead before draining", func(t *testing.T) {
		in := Input{
			Nodes: []Node{{ID: "a"}, {ID: "b"}, {ID: "c", State: Draining}, {ID: "d", State: Dead}, {ID: "e"}, {ID: "f"}},
			Groups: []Group{
				{ID: 1, Voters: []string{"a", "b", "c"}},
				{ID: 2, Voters: []string{"a", "b", "d"}},
			},
			Replicas:        3,
			MaxMovesPerNode: -1,
		}
		moves, err := Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		want := []Move{{Group: 2, Add: "e", Remove: "d"}, {Group: 1, Add: "f", Remove: "c"}}
		if !slices.Equal(moves, want) {
			t.Fatalf("Plan = %v, want %v", moves, want)
		}
	})
	t.Run("fewer active nodes than replicas", func(t *testing.T) {
		in := Input{
			Nodes:    []Node{{ID: "a"}, {ID: "b"}, {ID: "c", State: Dead}},
			Groups:   []Group{{ID: 1, Voters: []string{"a", "b", "c"}}},
			Replicas: 3,
		}
		moves, err := Plan(in)
		if want := []Move{{Group: 1, Remove: "c"}}; err != nil || !slices.Equal(moves, want) {
			t.Fatalf("Plan = %v, %v; want %v", moves, err, want)
		}
	})
	t.Run("quorum lost", func(t *testing.T) {
		in := Input{
			Nodes:    []Node{{ID: "a"}, {ID: "b", State: Dead}, {ID: "c", State: Dead}, {ID: "d"}, {ID: "e"}},
			Groups:   []Group{{ID: 1, Voters: []string{"a", "b", "c"}}, {ID: 2, Voters: []string{"a", "d", "c"}}},
			Replicas: 3,
		}
		moves, err := Plan(in)
		if want := []Move{{Group: 2, Add: "e", Remove: "c"}}; err != nil || !slices.Equal(moves, want) {
			t.Fatalf("Plan = %v, %v; want %v (group 1 cannot reach a quorum)", moves, err, want)
		}
	})
	t.Run("every node draining", func(t *testing.T) {
		in := Input{
			Nodes:    []Node{{ID: "a", State: Draining}, {ID: "b", State: Draining}},
			Groups:   []Group{{ID: 1, Voters: []string{"a", "b"}}},
			Replicas: 3,
		}
		if moves, err := Plan(in); err != nil || len(moves) != 0 {
			t.Fatalf("Plan = %v, %v; want nothing (no replica may go)", moves, err)
		}
	})
	t.Run("unknown node", func(t *testing.T) {
		in := Input{
			Nodes:    []Node{{ID: "a"}, {ID: "b"}, {ID: "c"}},
			Groups:   []Group{{ID: 1, Voters: []string{"a", "b", "gone"}}},
			Replicas: 3,
		}
		moves, err := Plan(in)
		if want := []Move{{Group: 1, Add: "c", Remove: "gone"}}; err != nil || !slices.Equal(moves, want) {
			t.Fatalf("Plan = %v, %v; want %v", moves, err, want)
		}
	})
}

func TestPlan_Invalid(t *testing.T) {
	base := func() Input {
		return Input{
			Nodes:    []Node{{ID: "a"}, {ID: "b"}},
			Groups:   []Group{{ID: 1, Voters: []string{"a"}}, {ID: 2}},
			Replicas: 2,
		}
	}
	cases := []struct {
		name   string
		change func(*Input)
		want   string
	}{
		{"replicas", func(in *Input) { in.Replicas = 0 }, "replicas is 0"},
		{"empty node ID", func(in *Input) { in.Nodes[1].ID = "" }, "empty ID"},
		{"node twice", func(in *Input) { in.Nodes[1].ID = "a" }, `node "a" is listed twice`},
		{"bad state", func(in *Input) { in.Nodes[0].State = 7 }, `node "a" has unknown state 7`},
		{"group twice", func(in *Input) { in.Groups[1].ID = 1 }, "group 1 is listed twice"},
		{"replica twice", func(in *Input) { in.Groups[0].Learners = []string{"a"} }, `group 1 lists node "a" twice`},
		{"two moves", func(in *Input) { in.InFlight = []Move{{Group: 2, Add: "a"}, {Group: 2, Add: "b"}} }, "group 2 has two moves in flight"},
		{"unknown group", func(in *Input) { in.InFlight = []Move{{Group: 9, Add: "a"}} }, "unknown group 9"},
		{"empty move", func(in *Input) { in.InFlight = []Move{{Group: 2}} }, "adds and removes nothing"},
		{"same node", func(in *Input) { in.InFlight = []Move{{Group: 1, Add: "a", Remove: "a"}} }, `adds and removes node "a"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.change(&in)
			moves, err := Plan(in)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || moves != nil {
				t.Fatalf("Plan = %v, %v; want an ErrInvalid naming %q", moves, err, tc.want)
			}
			if _, err := Leaders(in, nil); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Leaders: %v, want ErrInvalid", err)
			}
		})
	}
	if moves, err := Plan(base()); err != nil || len(moves) == 0 {
		t.Fatalf("the valid base input: Plan = %v, %v", moves, err)
	}
}

func TestNodeState_Text(t *testing.T) {
	for _, s := range []NodeState{Active, Draining, Dead} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back NodeState
		if err := back.UnmarshalText(b); err != nil || back != s || string(b) != s.String() {
			t.Fatalf("%v: %q decodes to %v, %v", s, b, back, err)
		}
	}
	var s NodeState
	if err := s.UnmarshalText([]byte("gone")); err == nil {
		t.Fatal("decoding an unknown state succeeded")
	}
	if _, err := NodeState(9).MarshalText(); err == nil {
		t.Fatal("encoding an unknown state succeeded")
	}
}

// TestPlan_JoinMany: ten nodes joining 100 at once (one of them in a new zone) receive
// close to the fewest replicas they must, and nothing else moves.
func TestPlan_JoinMany(t *testing.T) {
	const nodes, groups = 100, 1000
	s := newSim(t, nodes, groups, 3, 5)
	s.k = -1
	s.converge(20, nil)
	s.k = 0
	for i := range 10 {
		zone := fmt.Sprintf("z%d", i%5)
		if i == 9 {
			zone = "z5"
		}
		s.nodes = append(s.nodes, Node{ID: fmt.Sprintf("j%d", i), Zone: zone})
	}
	moves := s.converge(500, nil)
	s.check(1)
	need := 10 * (groups * 3 / (nodes + 10)) // each joiner reaches the floor of the mean
	ideal := float64(groups*3) * 10 / float64(nodes+10)
	for _, m := range moves {
		if m.Add == "" || m.Remove == "" || !strings.HasPrefix(m.Add, "j") {
			t.Fatalf("join moved %v, want only moves onto the new nodes", m)
		}
	}
	t.Logf("10 joins: %d moves (ideal %.1f, need %d)", len(moves), ideal, need)
	if len(moves) < need || float64(len(moves)) > 1.5*ideal {
		t.Fatalf("10 joins took %d moves, want between %d and %.0f", len(moves), need, 1.5*ideal)
	}
}
