package placement

// Leaders returns the leadership transfers that spread group leaders over the active nodes
// within one of the mean, in the order they should happen. leaders maps a group ID to the
// node leading it; groups missing from it have no known leader and are left alone, as are
// groups led by a dead node (an election will follow). A leader on a draining node is
// moved first. Leadership only goes to an active voter of the group, each group at most
// once per call, and the same input always gives the same transfers. Leaders is pure and
// safe for concurrent use; it returns an error wrapping ErrInvalid for an input Plan
// refuses.
func Leaders(in Input, leaders map[uint32]string) ([]Transfer, error) {
	c, _, err := load(in)
	if err != nil {
		return nil, err
	}
	count := make([]int, len(c.nodes))
	led := make([][]int32, len(c.nodes)) // groups led by each active node
	voterNodes := make([][]int32, len(c.groups))
	var draining []int32
	for gi := range c.groups {
		g := &c.groups[gi]
		leader, known := leaders[g.id]
		for _, id := range g.voters {
			if n, ok := c.byID[id]; ok {
				voterNodes[gi] = append(voterNodes[gi], n)
			}
		}
		n, ok := c.byID[leader]
		if !known || !ok {
			continue
		}
		switch c.nodes[n].state {
		case Active:
			count[n]++
			led[n] = append(led[n], int32(gi))
		case Draining:
			draining = append(draining, int32(gi))
		}
	}

	var out []Transfer
	done := make([]bool, len(c.groups))
	var all loadIndex
	for i, n := range c.nodes {
		if n.state == Active {
			all.insert(int32(i), count[i])
		}
	}
	move := func(gi int32, from string, to int32) {
		all.remove(to, count[to])
		count[to]++
		all.insert(to, count[to])
		led[to] = append(led[to], gi)
		done[gi] = true
		out = append(out, Transfer{Group: c.groups[gi].id, From: from, To: c.nodes[to].id})
	}
	// Leaders on draining nodes go to the active voter leading the fewest groups.
	for _, gi := range draining {
		best, found := int32(-1), false
		for _, v := range voterNodes[gi] {
			if c.nodes[v].state == Active && (!found || count[v] < count[best] || (count[v] == count[best] && v < best)) {
				best, found = v, true
			}
		}
		if found {
			move(gi, leaders[c.groups[gi].id], best)
		}
	}

	// Then from the node leading the most groups to a voter leading at least two fewer.
	src := all
	src.buckets = make([][]int32, len(all.buckets))
	for l, b := range all.buckets {
		src.buckets[l] = append([]int32(nil), b...)
	}
	for {
		x, lx, ok := src.max()
		if !ok {
			break
		}
		if lo, _ := all.min(); lx-lo <= 1 {
			break
		}
		var gBest, yBest int32
		found := false
		for _, gi := range led[x] {
			if done[gi] {
				continue
			}
			for _, v := range voterNodes[gi] {
				if c.nodes[v].state != Active || count[v] > lx-2 {
					continue
				}
				if !found || count[v] < count[yBest] || (count[v] == count[yBest] && (v < yBest || (v == yBest && gi < gBest))) {
					gBest, yBest, found = gi, v, true
				}
			}
		}
		if !found {
			src.remove(x, lx)
			continue
		}
		all.remove(x, count[x])
		src.remove(x, count[x])
		count[x]--
		all.insert(x, count[x])
		src.insert(x, count[x])
		for i, gi := range led[x] {
			if gi == gBest {
				led[x] = append(led[x][:i], led[x][i+1:]...)
				break
			}
		}
		if src.has(yBest, count[yBest]) {
			src.remove(yBest, count[yBest])
			src.insert(yBest, count[yBest]+1)
		}
		move(gBest, c.nodes[x].id, yBest)
	}
	return out, nil
}
