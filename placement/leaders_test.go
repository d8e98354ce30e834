package placement

import (
	"slices"
	"testing"
)

// applyTransfers checks each transfer (from the current leader to an active voter, one
// per group) and applies it to leaders.
func applyTransfers(t testing.TB, in Input, leaders map[uint32]string, ts []Transfer) {
	t.Helper()
	state := map[string]NodeState{}
	for _, n := range in.Nodes {
		state[n.ID] = n.State
	}
	voters := map[uint32][]string{}
	for _, g := range in.Groups {
		voters[g.ID] = g.Voters
	}
	seen := map[uint32]bool{}
	for _, tr := range ts {
		switch {
		case seen[tr.Group]:
			t.Fatalf("group %d transferred twice in one call", tr.Group)
		case leaders[tr.Group] != tr.From:
			t.Fatalf("%+v: the leader is %s", tr, leaders[tr.Group])
		case !slices.Contains(voters[tr.Group], tr.To) || state[tr.To] != Active:
			t.Fatalf("%+v: %s is not an active voter of the group (%v)", tr, tr.To, voters[tr.Group])
		}
		seen[tr.Group] = true
		leaders[tr.Group] = tr.To
	}
}

// checkLeaders asserts that every active node leads within one group of the mean.
func checkLeaders(t testing.TB, in Input, leaders map[uint32]string) {
	t.Helper()
	count := map[string]int{}
	for _, n := range in.Nodes {
		if n.State == Active {
			count[n.ID] = 0
		}
	}
	for _, l := range leaders {
		if _, ok := count[l]; !ok {
			t.Fatalf("leader %s is not an active node", l)
		}
		count[l]++
	}
	lo, hi := spread(count)
	mean := float64(len(leaders)) / float64(len(count))
	if float64(lo) < mean-1 || float64(hi) > mean+1 {
		t.Fatalf("leaders per node from %d to %d, mean %.2f", lo, hi, mean)
	}
}

// settleLeaders calls Leaders until it has nothing to do and returns the number of calls.
func settleLeaders(t testing.TB, in Input, leaders map[uint32]string) int {
	t.Helper()
	for call := 1; call <= 10; call++ {
		ts, err := Leaders(in, leaders)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 0 {
			return call
		}
		applyTransfers(t, in, leaders, ts)
	}
	t.Fatal("Leaders still transferring after 10 calls")
	return 0
}

func TestLeaders(t *testing.T) {
	s := newSim(t, 30, 300, 3, 3)
	s.k = -1
	s.converge(20, nil)
	in := s.input()
	// Every group led by its lowest-ID voter: the low nodes lead far too much.
	leaders := map[uint32]string{}
	for _, g := range in.Groups {
		leaders[g.ID] = slices.Min(g.Voters)
	}
	if calls := settleLeaders(t, in, leaders); calls > 3 {
		t.Errorf("Leaders took %d calls to settle, want at most 3", calls)
	}
	checkLeaders(t, in, leaders)

	// A draining node's leaderships go first, to voters leading little.
	s.setState("n0004", Draining)
	in = s.input()
	ts, err := Leaders(in, leaders)
	if err != nil {
		t.Fatal(err)
	}
	applyTransfers(t, in, leaders, ts)
	for g, l := range leaders {
		if l == "n0004" {
			t.Fatalf("group %d is still led by the draining node", g)
		}
	}
	settleLeaders(t, in, leaders)
	checkLeaders(t, in, leaders)
}

func TestLeaders_DeadAndUnknown(t *testing.T) {
	in := Input{
		Nodes:    []Node{{ID: "a"}, {ID: "b"}, {ID: "c", State: Dead}},
		Groups:   []Group{{ID: 1, Voters: []string{"a", "b", "c"}}, {ID: 2, Voters: []string{"a", "b", "c"}}, {ID: 3, Voters: []string{"a", "b", "c"}}},
		Replicas: 3,
	}
	// Group 1 is led by a dead node, group 2 has no known leader: both are left to
	// elections. a leads one group, b none: within one of the mean.
	ts, err := Leaders(in, map[uint32]string{1: "c", 3: "a"})
	if err != nil || len(ts) != 0 {
		t.Fatalf("Leaders = %v, %v; want nothing", ts, err)
	}
	// a leads all three: one goes to b.
	ts, err = Leaders(in, map[uint32]string{1: "a", 2: "a", 3: "a"})
	if want := []Transfer{{Group: 1, From: "a", To: "b"}}; err != nil || !slices.Equal(ts, want) {
		t.Fatalf("Leaders = %v, %v; want %v", ts, err, want)
	}
}

// TestLeaders_Chain: a leads two groups whose only other voter is b, which leads one; c
// leads none. No single transfer helps, the chain a→b (g1), b→c (g3) does.
func TestLeaders_Chain(t *testing.T) {
	in := Input{
		Nodes: []Node{{ID: "a"}, {ID: "b"}, {ID: "c"}},
		Groups: []Group{
			{ID: 1, Voters: []string{"a", "b"}},
			{ID: 2, Voters: []string{"b", "a"}},
			{ID: 3, Voters: []string{"c", "b"}},
		},
		Replicas: 2,
	}
	leaders := map[uint32]string{1: "a", 2: "a", 3: "b"}
	ts, err := Leaders(in, leaders)
	want := []Transfer{{Group: 1, From: "a", To: "b"}, {Group: 3, From: "b", To: "c"}}
	if err != nil || !slices.Equal(ts, want) {
		t.Fatalf("Leaders = %v, %v; want %v", ts, err, want)
	}
	// Pulling towards c works the same when the imbalance is on the low side: a and b
	// lead two each, c none, and c is a voter only of a group b leads.
	in.Groups = append(in.Groups, Group{ID: 4, Voters: []string{"a", "b"}})
	leaders = map[uint32]string{1: "a", 2: "a", 3: "b", 4: "b"}
	ts, err = Leaders(in, leaders)
	if err != nil || len(ts) == 0 {
		t.Fatalf("Leaders = %v, %v; want transfers towards c", ts, err)
	}
	applyTransfers(t, in, leaders, ts)
	checkLeaders(t, in, leaders)
}

// BenchmarkLeaders10k balances leaders for 1,000 nodes and 10,000 groups, all led by their
// lowest-ID voter.
func BenchmarkLeaders10k(b *testing.B) {
	in := settled(b, 1000, 10000, 3, 5).input()
	leaders := map[uint32]string{}
	for _, g := range in.Groups {
		leaders[g.ID] = slices.Min(g.Voters)
	}
	b.ResetTimer()
	for b.Loop() {
		if ts, err := Leaders(in, leaders); err != nil || len(ts) == 0 {
			b.Fatalf("Leaders: %d transfers, %v", len(ts), err)
		}
	}
}

// TestLeaders_MoveInFlight: the replica a move in flight removes loses its leadership
// first and never receives one.
func TestLeaders_MoveInFlight(t *testing.T) {
	in := Input{
		Nodes: []Node{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}},
		Groups: []Group{
			{ID: 1, Voters: []string{"a", "b", "c"}, Learners: []string{"d"}},
			{ID: 2, Voters: []string{"a", "b", "c"}},
			{ID: 3, Voters: []string{"a", "b", "c"}},
		},
		Replicas: 3,
		InFlight: []Move{{Group: 1, Add: "d", Remove: "c"}},
	}
	// Group 1 goes from c to a (a and b lead one each, a first by ID); then a leads two
	// and c none, so a hands c group 2, where c stays a voter.
	ts, err := Leaders(in, map[uint32]string{1: "c", 2: "a", 3: "b"})
	want := []Transfer{{Group: 1, From: "c", To: "a"}, {Group: 2, From: "a", To: "c"}}
	if err != nil || !slices.Equal(ts, want) {
		t.Fatalf("Leaders = %v, %v; want %v", ts, err, want)
	}
	// a leads groups 1 and 2, c none: group 1 must not go to c, its leaving replica.
	ts, err = Leaders(in, map[uint32]string{1: "a", 2: "a", 3: "b"})
	want = []Transfer{{Group: 2, From: "a", To: "c"}}
	if err != nil || !slices.Equal(ts, want) {
		t.Fatalf("Leaders = %v, %v; want %v", ts, err, want)
	}
	// Only group 1 led by a, b leads 2 and 3: b hands one to c, never group 1 to c.
	in.Groups[1].Voters = []string{"a", "b", "d"}
	ts, err = Leaders(in, map[uint32]string{1: "b", 2: "b", 3: "b"})
	for _, tr := range ts {
		if tr.Group == 1 && tr.To == "c" {
			t.Fatalf("Leaders = %v: group 1 went to its leaving replica", ts)
		}
	}
	if err != nil || len(ts) == 0 {
		t.Fatalf("Leaders = %v, %v; want transfers off b", ts, err)
	}
}
