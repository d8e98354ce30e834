package check

import "testing"

// placedHistory is a clean history of a 4-node cluster with 3 replicas: n4 was added, n5
// drained out; one move ran during the run (correctly: the configuration grew to 4 voters
// before shrinking back to 3).
func placedHistory() *History {
	h := cleanHistory()
	h.Replication = 3
	h.Drained = []string{"n5"}
	active := map[string]string{"n1": "active", "n2": "active", "n3": "active", "n4": "active"}
	h.Maps = []MapSample{
		{Node: "n1", Index: 10, Nodes: active, At: msec(10), Groups: []MapGroup{
			{ID: 0, Voters: []string{"n1", "n2", "n3"}, Move: "group 0: n4 replaces n3"},
			{ID: 1, Voters: []string{"n1", "n2", "n3"}},
		}},
		{Node: "n2", Index: 12, Nodes: active, At: msec(20), Groups: []MapGroup{
			{ID: 0, Voters: []string{"n1", "n2", "n4"}},
			{ID: 1, Voters: []string{"n1", "n2", "n3"}},
		}},
	}
	h.Configs = []ConfigSample{
		{Node: "n1", Group: 0, Term: 2, Voters: []string{"n1", "n2", "n3"}, NonVoters: []string{"n4"}, At: msec(11)},
		{Node: "n1", Group: 0, Term: 2, Voters: []string{"n1", "n2", "n3", "n4"}, At: msec(12)},
		{Node: "n1", Group: 0, Term: 2, Voters: []string{"n1", "n2", "n4"}, At: msec(13)},
	}
	final := h.Maps[1]
	final.Index = 14
	h.FinalMap = &final
	h.FinalConfigs = []ConfigSample{
		{Node: "n4", Group: 0, Term: 3, Voters: []string{"n4", "n2", "n1"}},
		{Node: "n2", Group: 1, Term: 2, Voters: []string{"n1", "n2", "n3"}},
	}
	return h
}

func TestPlacementClean(t *testing.T) {
	expect(t, Placement(placedHistory()), true)
}

func TestPlacementWithoutMapNotJudged(t *testing.T) {
	expect(t, Placement(cleanHistory()), true)
}

func TestPlacementAnomalies(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(h *History)
		want   []string
	}{
		{"leaving replica removed before its successor voted", func(h *History) {
			h.Configs = append(h.Configs, ConfigSample{Node: "n1", Group: 1, Term: 2, Voters: []string{"n1", "n2"}, NonVoters: []string{"n4"}, At: msec(30)},
				ConfigSample{Node: "n1", Group: 1, Term: 2, Voters: []string{"n1", "n2"}, NonVoters: []string{"n4"}, At: msec(31)})
		}, []string{"group 1 had fewer than 3 voters in 2 samples, first at 30ms: leader n1"}},
		{"the map recorded two voters", func(h *History) {
			h.Maps[1].Groups = []MapGroup{{ID: 0, Voters: []string{"n1", "n2"}}, {ID: 1, Voters: []string{"n1", "n2", "n3"}}}
			h.FinalMap.Groups = h.Maps[1].Groups
		}, []string{"group 0 had fewer than 3 voters in 1 samples", "final map: group 0 has voters [n1 n2]", "the map lists voters [n1 n2] but leader n4"}},
		{"a move left in progress", func(h *History) {
			h.FinalMap = &MapSample{Nodes: h.FinalMap.Nodes, Groups: []MapGroup{
				{ID: 0, Voters: []string{"n1", "n2", "n4"}, Move: "group 0: n3 replaces n4"},
				{ID: 1, Voters: []string{"n1", "n2", "n3"}},
			}}
		}, []string{"group 0 still has a move in progress"}},
		{"a drained node still listed and draining", func(h *History) {
			h.FinalMap = &MapSample{Nodes: map[string]string{"n1": "active", "n2": "active", "n3": "active", "n4": "active", "n5": "draining"},
				Groups: []MapGroup{{ID: 0, Voters: []string{"n1", "n2", "n4"}}, {ID: 1, Voters: []string{"n1", "n2", "n5"}}}}
			h.FinalConfigs[1].Voters = []string{"n1", "n2", "n5"}
		}, []string{"node n5 is draining", "drained node n5 is still a member", "group 1 lists drained node n5"}},
		{"configuration and map disagree", func(h *History) {
			h.FinalConfigs[1] = ConfigSample{Node: "n2", Group: 1, Voters: []string{"n1", "n2", "n3"}, NonVoters: []string{"n4"}}
		}, []string{"group 1: the map lists voters [n1 n2 n3] but leader n2 has voters [n1 n2 n3], non-voters [n4]"}},
		{"a group's configuration never read", func(h *History) {
			h.FinalConfigs = h.FinalConfigs[:1]
		}, []string{"final configuration of group 1 was not read"}},
		{"no final map", func(h *History) { h.FinalMap = nil }, []string{"no final cluster map"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := placedHistory()
			c.mutate(h)
			expect(t, Placement(h), false, c.want...)
		})
	}
}
