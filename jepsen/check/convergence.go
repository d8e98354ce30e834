package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Convergence checks that replicas of a group that applied the same Raft index hold the
// same state: every sample of one (group, index) has the same hash. A group none of whose
// indexes was sampled on two different nodes compared nothing, and fails too.
func Convergence(h *History) Verdict {
	h = orEmpty(h)
	type point struct {
		group int
		index uint64
	}
	samples := map[point][]ReplicaSample{}
	for _, s := range h.Replicas {
		k := point{s.Group, s.Index}
		samples[k] = append(samples[k], s)
	}
	points := slices.SortedFunc(maps.Keys(samples), func(a, b point) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.index, b.index))
	})

	var problems []string
	compared := 0
	groupCompared := map[int]bool{}
	for _, p := range points {
		nodes := nodeHashes(samples[p])
		if len(nodes) >= 2 {
			compared++
			groupCompared[p.group] = true
		}
		if distinctHashes(nodes) > 1 {
			problems = append(problems, fmt.Sprintf("group %d index %d: replicas differ: %s",
				p.group, p.index, describeHashes(nodes)))
		}
	}
	groups := map[int]bool{}
	for _, p := range points {
		groups[p.group] = true
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		if !groupCompared[g] {
			problems = append(problems, fmt.Sprintf("nothing compared for group %d: no index was sampled on two different nodes", g))
		}
	}
	if len(h.Replicas) == 0 {
		problems = append(problems, "no replica samples were recorded: nothing compared")
	}
	return verdict("convergence", "replicas that applied the same index hold byte-identical state",
		problems, map[string]string{
			"samples":                 itoa(len(h.Replicas)),
			"groups":                  itoa(len(groups)),
			"(group, index) compared": itoa(compared),
		})
}

// nodeHashes maps each node sampled to the hashes it reported, in sample order without
// repeats.
func nodeHashes(samples []ReplicaSample) map[string][]string {
	nodes := map[string][]string{}
	for _, s := range samples {
		if !slices.Contains(nodes[s.Node], s.Hash) {
			nodes[s.Node] = append(nodes[s.Node], s.Hash)
		}
	}
	return nodes
}

func distinctHashes(nodes map[string][]string) int {
	seen := map[string]bool{}
	for _, hs := range nodes {
		for _, h := range hs {
			seen[h] = true
		}
	}
	return len(seen)
}

// describeHashes lists node=hash pairs in node order.
func describeHashes(nodes map[string][]string) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(nodes)) {
		parts = append(parts, fmt.Sprintf("%s has %s", n, strings.Join(nodes[n], " and ")))
	}
	return strings.Join(parts, ", ")
}
