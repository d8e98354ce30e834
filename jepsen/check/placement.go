package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Placement checks the cluster map and the groups' Raft configurations against the move
// protocol (add as non-voter, promote, hand leadership over, remove, record):
//
//   - during the run, no map sample lists a group with fewer than Replication voters, and
//     no group's leader reports a configuration with fewer than Replication voters (a move
//     that removed the leaving replica before its successor voted leaves the group one
//     failure away from losing its quorum);
//   - after the heal, the map has every group on exactly Replication distinct active nodes,
//     no move in progress, no node draining or dead, no drained node left in it, and each
//     group's Raft configuration (from its leader) is exactly the map's voters.
//
// A history without Replication was recorded without a cluster map: nothing to judge.
func Placement(h *History) Verdict {
	h = orEmpty(h)
	const name, promise = "placement", "every group keeps its replicas as voters through moves; after the heal the map and the Raft configurations agree"
	if h.Replication <= 0 {
		return verdict(name, promise, nil, map[string]string{"judged": "no (recorded without a cluster map)"})
	}
	r := h.Replication
	var problems []string
	under := map[int]*lapse{}
	note := func(g int, at time.Duration, what string) {
		l := under[g]
		if l == nil {
			l = &lapse{first: at, what: what}
			under[g] = l
		}
		l.n++
	}
	for _, m := range h.Maps {
		for _, g := range m.Groups {
			if v := distinct(g.Voters); v < r {
				note(g.ID, m.At, fmt.Sprintf("the map on %s (index %d) lists voters %v", m.Node, m.Index, g.Voters))
			}
		}
	}
	for _, c := range h.Configs {
		if v := distinct(c.Voters); v < r {
			note(c.Group, c.At, fmt.Sprintf("leader %s (term %d) has voters %v, non-voters %v", c.Node, c.Term, c.Voters, c.NonVoters))
		}
	}
	for _, g := range slices.Sorted(maps.Keys(under)) {
		l := under[g]
		problems = append(problems, fmt.Sprintf("group %d had fewer than %d voters in %d samples, first at %s: %s",
			g, r, l.n, l.first.Round(time.Millisecond), l.what))
	}
	problems = append(problems, finalPlacement(h, r)...)
	return verdict(name, promise, problems, map[string]string{
		"map samples":    itoa(len(h.Maps)),
		"config samples": itoa(len(h.Configs)),
		"drained":        strings.Join(h.Drained, " "),
	})
}

// lapse is a group's run of under-replicated samples.
type lapse struct {
	first time.Duration
	what  string
	n     int
}

func finalPlacement(h *History, r int) []string {
	m := h.FinalMap
	if m == nil {
		return []string{"no final cluster map was read after the heal"}
	}
	var problems []string
	for _, id := range slices.Sorted(maps.Keys(m.Nodes)) {
		if st := m.Nodes[id]; st != "active" {
			problems = append(problems, fmt.Sprintf("final map: node %s is %s", id, st))
		}
		if slices.Contains(h.Drained, id) {
			problems = append(problems, fmt.Sprintf("final map: drained node %s is still a member", id))
		}
	}
	configs := map[int]ConfigSample{}
	for _, c := range h.FinalConfigs {
		configs[c.Group] = c
	}
	for _, g := range m.Groups {
		if g.Move != "" {
			problems = append(problems, fmt.Sprintf("final map: group %d still has a move in progress (%s)", g.ID, g.Move))
		}
		if distinct(g.Voters) != r || len(g.Voters) != r {
			problems = append(problems, fmt.Sprintf("final map: group %d has voters %v, want %d distinct", g.ID, g.Voters, r))
		}
		for _, v := range g.Voters {
			if _, ok := m.Nodes[v]; !ok {
				problems = append(problems, fmt.Sprintf("final map: group %d lists %s, which is not a node of the map", g.ID, v))
			}
			if slices.Contains(h.Drained, v) {
				problems = append(problems, fmt.Sprintf("final map: group %d lists drained node %s", g.ID, v))
			}
		}
		c, ok := configs[g.ID]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("final configuration of group %d was not read from its leader", g.ID))
		case !sameSet(c.Voters, g.Voters) || len(c.NonVoters) > 0:
			problems = append(problems, fmt.Sprintf("group %d: the map lists voters %v but leader %s has voters %v, non-voters %v",
				g.ID, g.Voters, c.Node, c.Voters, c.NonVoters))
		}
	}
	return problems
}

func distinct(ids []string) int {
	s := slices.Clone(ids)
	slices.Sort(s)
	return len(slices.Compact(s))
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
