package placement

import "slices"

// Leaders returns the leadership transfers that spread group leaders over the active nodes
// within one of the mean, in the order they should happen. leaders maps a group ID to the
// node leading it; groups missing from it have no known leader and are left alone, as are
// groups led by a dead node (an election will follow). Leaders on draining nodes, and on
// nodes a move in flight is removing the group's replica from, are moved first.
// Leadership only goes to an active voter of the group that no move in flight is
// removing, and each group moves at
// most once per call; the same input always gives the same transfers. Leaders is pure and
// safe for concurrent use; it returns an error wrapping ErrInvalid for an input Plan
// refuses.
//
// A node leading too many groups hands one to a voter leading at least two fewer, or, when
// none of its groups has such a voter, along a chain of groups (A hands g1 to B, B hands
// g2 to C) that ends at one: the nodes in between keep their count. The same goes the other
// way for a node leading too few.
func Leaders(in Input, leaders map[uint32]string) ([]Transfer, error) {
	c, _, err := load(in)
	if err != nil {
		return nil, err
	}
	b := &leaderBalance{
		cluster: c,
		leader:  make([]int32, len(c.groups)),
		count:   make([]int, len(c.nodes)),
		led:     make([][]int32, len(c.nodes)),
		voterOf: make([][]int32, len(c.nodes)),
		voters:  make([][]int32, len(c.groups)),
		done:    make([]bool, len(c.groups)),
		seen:    make([]int32, len(c.nodes)),
		prev:    make([]int32, len(c.nodes)),
		via:     make([]int32, len(c.nodes)),
	}
	var draining []int32
	for gi := range c.groups {
		g := &c.groups[gi]
		for _, id := range g.voters {
			if n, ok := c.byID[id]; ok && c.nodes[n].state == Active && id != g.leave {
				b.voters[gi] = append(b.voters[gi], n)
				b.voterOf[n] = append(b.voterOf[n], int32(gi))
			}
		}
		slices.Sort(b.voters[gi]) // node order, not the input's
		b.leader[gi] = -1
		n, ok := c.byID[leaders[g.id]]
		if !ok {
			continue
		}
		switch {
		case c.nodes[n].state == Draining || (c.nodes[n].state == Active && g.leave == c.nodes[n].id):
			draining = append(draining, int32(gi))
		case c.nodes[n].state == Active:
			b.leader[gi] = n
			b.count[n]++
			b.led[n] = append(b.led[n], int32(gi))
		}
	}
	// Leaders on draining nodes, or on the node a move in flight removes the group's replica
	// from, go to the active voter leading the fewest groups.
	for _, gi := range draining {
		to := int32(-1)
		for _, v := range b.voters[gi] {
			if to < 0 || b.count[v] < b.count[to] {
				to = v
			}
		}
		if to >= 0 {
			b.out = append(b.out, Transfer{Group: c.groups[gi].id, From: leaders[c.groups[gi].id], To: c.nodes[to].id})
			b.done[gi] = true
			b.leader[gi] = to
			b.count[to]++
			b.led[to] = append(b.led[to], gi)
		}
	}
	b.spread()
	return b.out, nil
}

// leaderBalance is the state of one Leaders call.
type leaderBalance struct {
	*cluster
	leader  []int32   // per group: the leading node, -1 when unknown or not active
	count   []int     // per node: groups led
	led     [][]int32 // per node: groups led
	voterOf [][]int32 // per node: groups it is an active voter of
	voters  [][]int32 // per group: active voters
	done    []bool    // per group: transferred in this call
	seen    []int32   // per node: the search that reached it last (see path)
	prev    []int32   // per node: the node the search reached it from
	via     []int32   // per node: the group the search reached it through
	search  int32
	out     []Transfer
}

// spread moves leaderships from the most loaded nodes, then to the least loaded, until
// every active node leads within one of the mean or no chain can improve it.
func (b *leaderBalance) spread() {
	stuck := make([]bool, len(b.nodes))
	for _, push := range []bool{true, false} {
		clear(stuck)
		for {
			lo, hi := b.extremes(nil)
			if lo < 0 || b.count[hi]-b.count[lo] <= 1 {
				return
			}
			plo, phi := b.extremes(stuck)
			pick := plo
			if push {
				pick = phi
			}
			if pick < 0 || (push && b.count[pick]-b.count[lo] <= 1) || (!push && b.count[hi]-b.count[pick] <= 1) {
				break
			}
			if !b.path(pick, push) {
				stuck[pick] = true
			}
		}
	}
}

// extremes returns the active nodes leading the fewest and the most groups (ties to the
// lowest node ID), skipping those marked in skip; -1 when there is none.
func (b *leaderBalance) extremes(skip []bool) (lo, hi int32) {
	lo, hi = -1, -1
	for i, n := range b.nodes {
		if n.state != Active || (skip != nil && skip[i]) {
			continue
		}
		if lo < 0 || b.count[i] < b.count[lo] {
			lo = int32(i)
		}
		if hi < 0 || b.count[i] > b.count[hi] {
			hi = int32(i)
		}
	}
	return lo, hi
}

// path searches, breadth first, a chain of transfers from start: pushing (start leads too
// many) along groups start leads to their voters, until a node leading at least two fewer
// than start; or pulling (start leads too few) along groups start is a voter of to their
// leaders, until a node leading at least two more. It applies the shortest such chain and
// reports whether there was one.
func (b *leaderBalance) path(start int32, push bool) bool {
	b.search++
	b.seen[start] = b.search
	queue := []int32{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		groups := b.voterOf[n]
		if push {
			groups = b.led[n]
		}
		for _, gi := range groups {
			l := b.leader[gi]
			if b.done[gi] || l < 0 || (!push && l == n) {
				continue
			}
			next := []int32{l}
			if push {
				next = b.voters[gi]
			}
			for _, m := range next {
				if b.seen[m] == b.search {
					continue
				}
				b.seen[m], b.prev[m], b.via[m] = b.search, n, gi
				if (push && b.count[m] <= b.count[start]-2) || (!push && b.count[m] >= b.count[start]+2) {
					b.apply(start, m, push)
					return true
				}
				queue = append(queue, m)
			}
		}
	}
	return false
}

// apply transfers the groups on the chain path found from start to end. Pushing, each
// node on the chain hands the group it was reached through from the node before it to
// itself; pulling, from itself to the node before it. Only start and end change counts.
func (b *leaderBalance) apply(start, end int32, push bool) {
	var steps []int32 // nodes from end back to start (excluded)
	for n := end; n != start; n = b.prev[n] {
		steps = append(steps, n)
	}
	for i := len(steps) - 1; i >= 0; i-- {
		n := steps[i]
		if push {
			b.transfer(b.via[n], b.prev[n], n)
		} else {
			b.transfer(b.via[n], n, b.prev[n])
		}
	}
}

// transfer records and applies one leadership transfer.
func (b *leaderBalance) transfer(gi, from, to int32) {
	b.out = append(b.out, Transfer{Group: b.groups[gi].id, From: b.nodes[from].id, To: b.nodes[to].id})
	b.done[gi] = true
	b.leader[gi] = to
	b.count[from]--
	b.count[to]++
	for i, g := range b.led[from] {
		if g == gi {
			b.led[from] = append(b.led[from][:i], b.led[from][i+1:]...)
			break
		}
	}
	b.led[to] = append(b.led[to], gi)
}
