package check

import (
	"fmt"
	"maps"
	"slices"
)

// retainedGroup is one group's retained outputs, the reference subscribers are checked
// against: IDs in (index, seq) order and each one's position.
type retainedGroup struct {
	ids         []string
	pos         map[string]int
	first, last outputID
}

// covers reports whether id falls within the range the retained outputs span.
func (r *retainedGroup) covers(id outputID) bool {
	return compareOutputIDs(id, r.first) >= 0 && compareOutputIDs(id, r.last) <= 0
}

// subscriberProblems checks every subscriber against the retained outputs, and returns
// how many distinct outputs were retained.
func subscriberProblems(subs [][]Output, retained []Output) (int, []string) {
	ids, bodies := byID(retained)
	problems := bodyProblems("retained list: ", ids, bodies)
	ref := map[uint64]*retainedGroup{}
	for _, id := range ids {
		p, ok := parseOutputID(id)
		if !ok {
			problems = append(problems, fmt.Sprintf("retained list: malformed output ID %q", id))
			continue
		}
		r := ref[p.group]
		if r == nil {
			r = &retainedGroup{pos: map[string]int{}, first: p}
			ref[p.group] = r
		}
		r.pos[id] = len(r.ids)
		r.ids = append(r.ids, id)
		r.last = p
	}
	for i, sub := range subs {
		problems = append(problems, checkSubscriber(i, sub, ref, bodies)...)
	}
	return len(ids), problems
}

// checkSubscriber checks one subscriber's outputs: one body per ID, the retained body for
// each ID in the retained range, no retained output skipped between the first and the
// last it saw of a group, and increasing IDs per group on each connection.
func checkSubscriber(n int, sub []Output, ref map[uint64]*retainedGroup, retained map[string]*deliveries) []string {
	ids, got := byID(sub)
	problems := bodyProblems(fmt.Sprintf("subscriber %d: ", n), ids, got)
	seen := map[uint64][]int{} // per group, positions in the retained list, increasing
	for _, id := range ids {
		p, ok := parseOutputID(id)
		if !ok {
			problems = append(problems, fmt.Sprintf("subscriber %d got an output with malformed ID %q", n, id))
			continue
		}
		r := ref[p.group]
		if r == nil || !r.covers(p) {
			continue
		}
		pos, found := r.pos[id]
		if !found {
			problems = append(problems, fmt.Sprintf("subscriber %d got output %s, which is not among group %d's retained outputs", n, id, p.group))
			continue
		}
		if body, want := got[id].bodies[0], retained[id].bodies[0]; body != want {
			problems = append(problems, fmt.Sprintf("subscriber %d got output %s with body %s, but the retained body is %s",
				n, id, quote(body), quote(want)))
		}
		seen[p.group] = append(seen[p.group], pos)
	}
	for _, g := range slices.Sorted(maps.Keys(seen)) {
		problems = append(problems, gapProblems(n, ref[g], seen[g])...)
	}
	return append(problems, orderProblems(n, sub)...)
}

// gapProblems names the retained outputs a subscriber skipped between two it saw.
func gapProblems(n int, r *retainedGroup, seen []int) []string {
	var problems []string
	for i := 1; i < len(seen); i++ {
		a, b := seen[i-1], seen[i]
		switch {
		case b == a+2:
			problems = append(problems, fmt.Sprintf("subscriber %d skipped output %s between %s and %s",
				n, r.ids[a+1], r.ids[a], r.ids[b]))
		case b > a+2:
			problems = append(problems, fmt.Sprintf("subscriber %d skipped %d outputs, %s to %s, between %s and %s",
				n, b-a-1, r.ids[a+1], r.ids[b-1], r.ids[a], r.ids[b]))
		}
	}
	return problems
}

// orderProblems names outputs that arrived on one connection after an output of the same
// group with an equal or later ID.
func orderProblems(n int, sub []Output) []string {
	type stream struct {
		conn  int
		group uint64
	}
	last := map[stream]Output{}
	var problems []string
	for _, o := range sub {
		p, ok := parseOutputID(o.ID)
		if !ok {
			continue
		}
		s := stream{o.Conn, p.group}
		prev, seen := last[s]
		last[s] = o
		if !seen {
			continue
		}
		pp, _ := parseOutputID(prev.ID)
		switch c := compareOutputIDs(p, pp); {
		case c == 0:
			problems = append(problems, fmt.Sprintf("subscriber %d connection %d got output %s twice", n, o.Conn, o.ID))
		case c < 0:
			problems = append(problems, fmt.Sprintf("subscriber %d connection %d got output %s after %s (out of order)",
				n, o.Conn, o.ID, prev.ID))
			last[s] = prev
		}
	}
	return problems
}
