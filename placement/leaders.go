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
	queue   []int32   // the search's queue, kept between searches
	all     loadIndex // active nodes by count
	cand    loadIndex // active nodes that may still start a chain, by count
	inCand  []bool
	out     []Transfer
}

// spread moves leaderships from the most loaded nodes, then to the least loaded, until
// every active node leads within one of the mean or no chain can improve it.
func (b *leaderBalance) spread() {
	b.inCand = make([]bool, len(b.nodes))
	for i, n := range b.nodes {
		if n.state == Active {
			b.all.insert(int32(i), b.count[i])
		}
	}
	for _, push := range []bool{true, false} {
		// cand holds the nodes not found stuck in this direction yet.
		b.cand = loadIndex{}
		for i, n := range b.nodes {
			if b.inCand[i] = n.state == Active; b.inCand[i] {
				b.cand.insert(int32(i), b.count[i])
			}
		}
		for {
			lo, _ := b.all.min()
			_, hi, _ := b.all.max()
			if hi-lo <= 1 {
				return
			}
			var pick int32
			var ok bool
			if push {
				var l int
				pick, l, ok = b.cand.max()
				ok = ok && l-lo > 1
			} else {
				var l int
				pick, l, ok = b.cand.first(hi-2, nil, 0, nil)
				ok = ok && hi-l > 1
			}
			if !ok {
				break
			}
			if !b.path(pick, push) {
				b.cand.remove(pick, b.count[pick])
				b.inCand[pick] = false
			}
		}
	}
}

// path searches, breadth first, a chain of transfers from start: pushing (start leads too
// many) along groups start leads to their voters, until a node leading at least two fewer
// than start; or pulling (start leads too few) along groups start is a voter of to their
// leaders, until a node leading at least two more. It applies the shortest such chain and
// reports whether there was one.
func (b *leaderBalance) path(start int32, push bool) bool {
	b.search++
	b.seen[start] = b.search
	b.queue = append(b.queue[:0], start)
	for len(b.queue) > 0 {
		n := b.queue[0]
		b.queue = b.queue[1:]
		if push {
			for _, gi := range b.led[n] {
				if b.done[gi] {
					continue
				}
				for _, m := range b.voters[gi] {
					if b.reach(start, n, m, gi, push) {
						return true
					}
				}
			}
			continue
		}
		for _, gi := range b.voterOf[n] {
			if l := b.leader[gi]; !b.done[gi] && l >= 0 && l != n && b.reach(start, n, l, gi, push) {
				return true
			}
		}
	}
	return false
}

// reach visits node m from n through group gi in the search from start: when m ends a
// chain it applies the chain and returns true, otherwise it queues m once.
func (b *leaderBalance) reach(start, n, m, gi int32, push bool) bool {
	if b.seen[m] == b.search {
		return false
	}
	b.seen[m], b.prev[m], b.via[m] = b.search, n, gi
	if (push && b.count[m] <= b.count[start]-2) || (!push && b.count[m] >= b.count[start]+2) {
		b.apply(start, m, push)
		return true
	}
	b.queue = append(b.queue, m)
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
	b.setCount(from, b.count[from]-1)
	b.setCount(to, b.count[to]+1)
	for i, g := range b.led[from] {
		if g == gi {
			b.led[from] = append(b.led[from][:i], b.led[from][i+1:]...)
			break
		}
	}
	b.led[to] = append(b.led[to], gi)
}

// setCount changes a node's count in the indexes holding it.
func (b *leaderBalance) setCount(n int32, c int) {
	b.all.remove(n, b.count[n])
	b.all.insert(n, c)
	if b.inCand[n] {
		b.cand.remove(n, b.count[n])
		b.cand.insert(n, c)
	}
	b.count[n] = c
}
