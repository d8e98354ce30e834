package placement

import (
	"cmp"
	"math"
	"slices"
)

// Plan returns the moves that may start now to bring the cluster towards its desired
// placement, in the order they should start (see the package documentation for the rules
// and their priority). It returns nothing when the placement needs no change, or when every
// change it needs waits for a throttle. The result depends only on the input's content, not
// on the order of its slices. Plan is pure and safe for concurrent use; it returns an error
// wrapping ErrInvalid, and no moves, for an input it refuses.
func Plan(in Input) ([]Move, error) {
	c, busy, err := load(in)
	if err != nil {
		return nil, err
	}
	p := newPlanner(c, busy, in)
	p.repair()
	p.spread()
	p.balance()
	return p.moves, nil
}

// planner holds the effective placement (in-flight and planned moves applied) while Plan
// decides, with the indexes that make each choice cost O(R log N).
type planner struct {
	*cluster
	r    int         // voters each group should have: Replicas, or fewer active nodes
	k    int         // moves per node at once; negative means no bound
	load []int       // replicas per node
	busy []int       // moves per node, in flight and planned
	held [][]int32   // the groups (positions in groups) with a replica on each node
	all  loadIndex   // every active node
	dest []loadIndex // per zone: the nodes in inDest
	// destAll holds every node in inDest, and avail counts them per zone; with many
	// zones a choice scans it, filtering by zone, instead of visiting every zone.
	destAll    loadIndex
	avail      []int
	availZones int       // zones with avail > 0
	src        loadIndex // active nodes that may still give a replica away in balance
	inDest     []bool    // node is in dest[zone]: active and not at its move bound
	inSrc      []bool
	zc         []int // scratch: replicas of one group per zone, zeroed after each use
	moves      []Move
}

func newPlanner(c *cluster, busy []int, in Input) *planner {
	p := &planner{
		cluster: c,
		r:       min(in.Replicas, c.active),
		k:       in.MaxMovesPerNode,
		load:    make([]int, len(c.nodes)),
		busy:    busy,
		held:    make([][]int32, len(c.nodes)),
		dest:    make([]loadIndex, c.zones),
		avail:   make([]int, c.zones),
		inDest:  make([]bool, len(c.nodes)),
		inSrc:   make([]bool, len(c.nodes)),
		zc:      make([]int, c.zones),
	}
	if p.k == 0 {
		p.k = DefaultMaxMovesPerNode
	}
	for gi := range c.groups {
		for _, n := range c.groups[gi].live {
			p.load[n]++
			p.held[n] = append(p.held[n], int32(gi))
		}
	}
	for i, n := range c.nodes {
		if n.state != Active {
			continue
		}
		node := int32(i)
		p.all.insert(node, p.load[i])
		if !p.full(node) {
			p.dest[n.zone].insert(node, p.load[i])
			p.destAll.insert(node, p.load[i])
			if p.avail[n.zone]++; p.avail[n.zone] == 1 {
				p.availZones++
			}
			p.src.insert(node, p.load[i])
			p.inDest[i], p.inSrc[i] = true, true
		}
	}
	return p
}

// full reports whether node takes part in as many moves as it may.
func (p *planner) full(node int32) bool {
	return p.k >= 0 && p.busy[node] >= p.k
}

// needsRepair reports whether a group has the wrong number of replicas or some on nodes
// that are not active.
func (p *planner) needsRepair(g *groupInfo) bool {
	return len(g.live) != p.r || len(g.bad) > 0
}

// repair gives every group its replica count on active nodes: it replaces replicas on dead,
// unknown and draining nodes, adds missing ones and removes surplus ones. The groups with the
// fewest working replicas (on nodes that are not dead) go first.
func (p *planner) repair() {
	type cand struct {
		g       int32
		working int
	}
	var todo []cand
	for gi := range p.groups {
		g := &p.groups[gi]
		if g.locked || g.stuck || !p.needsRepair(g) {
			continue
		}
		working := len(g.live)
		for _, b := range g.bad {
			if b.node >= 0 && p.nodes[b.node].state == Draining {
				working++
			}
		}
		todo = append(todo, cand{int32(gi), working})
	}
	slices.SortStableFunc(todo, func(a, b cand) int { return cmp.Compare(a.working, b.working) })
	for _, c := range todo {
		p.repairGroup(c.g, c.working)
	}
}

func (p *planner) repairGroup(gi int32, working int) {
	g := &p.groups[gi]
	switch {
	case len(g.live) < p.r:
		add, _, ok := p.bestAdd(g)
		if !ok {
			return
		}
		if b, ok := p.pickBad(g); ok {
			p.commit(gi, add, b)
			return
		}
		// Only draining replicas at their move bound could leave: add without removing
		// only while the group is short of working replicas, else wait for the bound.
		if working < p.r {
			p.commit(gi, add, replica{node: -1})
		}
	case len(g.bad) > 0:
		// Never drop a group's last replica on an active node.
		if len(g.live) == 0 {
			return
		}
		if b, ok := p.pickBad(g); ok {
			p.commit(gi, -1, b)
		}
	case len(g.live) > p.r:
		p.countZones(g)
		defer p.clearZones(g)
		top := 0
		for _, n := range g.live {
			top = max(top, p.zc[p.nodes[n].zone])
		}
		if x, ok := p.pickRemove(g, top); ok {
			p.commit(gi, -1, replica{id: p.nodes[x].id, node: x})
		}
	}
}

// pickBad chooses the replica on a node that is not active to remove next: dead and
// unknown nodes first, then draining ones below their move bound, by node ID.
func (p *planner) pickBad(g *groupInfo) (replica, bool) {
	for _, b := range g.bad {
		if b.node < 0 || p.nodes[b.node].state == Dead {
			return b, true
		}
	}
	for _, b := range g.bad {
		if !p.full(b.node) {
			return b, true
		}
	}
	return replica{}, false
}

// pickRemove chooses, among a group's replicas in zones holding top of them, the one on
// the most loaded node below its move bound (ties to the lowest node ID). p.zc must hold
// the group's zone counts.
func (p *planner) pickRemove(g *groupInfo, top int) (int32, bool) {
	best, found := int32(-1), false
	for _, n := range g.live {
		if p.zc[p.nodes[n].zone] != top || p.full(n) {
			continue
		}
		if !found || p.load[n] > p.load[best] || (p.load[n] == p.load[best] && n < best) {
			best, found = n, true
		}
	}
	return best, found
}

// bestAdd chooses the node to add a replica of g on: in a zone holding the fewest of its
// replicas, the least loaded node below its move bound (ties broken by loadIndex.first
// with g's seed within a zone, by node ID across zones). It also returns how many
// replicas of g the chosen zone holds.
func (p *planner) bestAdd(g *groupInfo) (node int32, inZone int, ok bool) {
	p.countZones(g)
	defer p.clearZones(g)
	if p.zones > manyZones {
		return p.bestAddScan(g)
	}
	var bestLoad int
	for z := range p.dest {
		if ok && p.zc[z] > inZone {
			continue
		}
		n, l, found := p.dest[z].first(math.MaxInt, g.live, seed(g), nil)
		if !found {
			continue
		}
		if !ok || p.zc[z] < inZone || l < bestLoad || (l == bestLoad && n < node) {
			node, inZone, bestLoad, ok = n, p.zc[z], l, true
		}
	}
	return node, inZone, ok
}

// manyZones is the number of zones above which choices scan all candidate nodes once,
// filtering by zone, rather than each zone's index in turn.
const manyZones = 16

// bestAddScan is bestAdd for many zones; p.zc must hold g's zone counts.
func (p *planner) bestAddScan(g *groupInfo) (node int32, inZone int, ok bool) {
	// The fewest replicas of g in a zone with room: 0 if some such zone holds none, else
	// the least among the zones g occupies.
	occupied, least := 0, math.MaxInt
	for i, n := range g.live {
		z := p.nodes[n].zone
		if p.avail[z] == 0 || slices.ContainsFunc(g.live[:i], func(m int32) bool { return p.nodes[m].zone == z }) {
			continue
		}
		occupied++
		least = min(least, p.zc[z])
	}
	if p.availZones > occupied {
		least = 0
	}
	node, _, ok = p.destAll.first(math.MaxInt, g.live, seed(g), func(n int32) bool {
		return p.zc[p.nodes[n].zone] == least
	})
	return node, least, ok
}

// spread moves replicas of groups crowded into one zone to a zone holding at least two
// fewer of them, so that every group spans as many zones as the active nodes allow.
func (p *planner) spread() {
	for gi := range p.groups {
		g := &p.groups[gi]
		if g.locked || g.stuck || len(g.live) < 2 || p.needsRepair(g) {
			continue
		}
		p.countZones(g)
		top := 0
		for _, n := range g.live {
			top = max(top, p.zc[p.nodes[n].zone])
		}
		p.clearZones(g)
		if top < 2 {
			continue
		}
		add, inZone, ok := p.bestAdd(g)
		if !ok || inZone+2 > top {
			continue
		}
		p.countZones(g)
		x, ok := p.pickRemove(g, top)
		p.clearZones(g)
		if ok {
			p.commit(int32(gi), add, replica{id: p.nodes[x].id, node: x})
		}
	}
}

// balance moves replicas from the most loaded nodes to the least loaded ones until every
// active node holds within one replica of the mean, or until no move is allowed: a move
// never puts a group's replica in a zone already holding as many of its replicas as the
// zone it leaves, and never touches a group that has a move or needs repair.
func (p *planner) balance() {
	for {
		x, lx, ok := p.src.max()
		if !ok {
			return
		}
		if lo, _ := p.all.min(); lx-lo <= 1 {
			return
		}
		gi, y, ok := p.bestShed(x, lx)
		if !ok {
			// Nothing on x may go anywhere less loaded now: leave it for this call.
			p.src.remove(x, lx)
			p.inSrc[x] = false
			continue
		}
		p.commit(gi, y, replica{id: p.nodes[x].id, node: x})
	}
}

// bestShed chooses a replica on node x (load lx) and a node at least two replicas less
// loaded to move it to: the least loaded such node (each group's candidates found with
// its seed, then ties to the lowest node ID and the lowest group ID).
func (p *planner) bestShed(x int32, lx int) (gi, y int32, ok bool) {
	zx := p.nodes[x].zone
	limit, bestLoad := lx-2, 0
	for _, cand := range p.held[x] {
		g := &p.groups[cand]
		if g.locked || g.stuck || p.needsRepair(g) {
			continue
		}
		p.countZones(g)
		if p.zones > manyZones {
			n, l, found := p.destAll.first(limit, g.live, seed(g), func(n int32) bool {
				z := p.nodes[n].zone
				return z == zx || p.zc[z]+1 <= p.zc[zx]
			})
			if found && (!ok || l < bestLoad || (l == bestLoad && (n < y || (n == y && cand < gi)))) {
				gi, y, bestLoad, ok = cand, n, l, true
				limit = l
			}
		}
		for z := range p.dest {
			if p.zones > manyZones {
				break
			}
			if int32(z) != zx && p.zc[z]+1 > p.zc[zx] {
				continue
			}
			n, l, found := p.dest[z].first(limit, g.live, seed(g), nil)
			if !found {
				continue
			}
			if !ok || l < bestLoad || (l == bestLoad && (n < y || (n == y && cand < gi))) {
				gi, y, bestLoad, ok = cand, n, l, true
				limit = l
			}
		}
		p.clearZones(g)
	}
	return gi, y, ok
}

// seed scatters a group's choices among equally loaded nodes (see loadIndex.first): a
// fixed mix of the group ID and the nodes it is on, so that groups placed together do not
// all share the same nodes (which would concentrate a dead node's re-replication on a few
// survivors and tie leaders to a few voters), and successive replicas of one group do not
// land on neighbouring nodes. The sum makes it independent of the order of live.
func seed(g *groupInfo) uint32 {
	h := g.id * 0x9e3779b1
	for _, n := range g.live {
		h += (uint32(n) + 1) * 0x85ebca6b
	}
	h ^= h >> 16
	h *= 0x7feb352d
	return h ^ h>>15
}

func (p *planner) countZones(g *groupInfo) {
	for _, n := range g.live {
		p.zc[p.nodes[n].zone]++
	}
}

func (p *planner) clearZones(g *groupInfo) {
	for _, n := range g.live {
		p.zc[p.nodes[n].zone] = 0
	}
}

// commit records a move of group gi adding a replica on node add (-1 for none) and
// removing replica rm (rm.id empty for none), and applies it to the effective placement.
func (p *planner) commit(gi int32, add int32, rm replica) {
	g := &p.groups[gi]
	m := Move{Group: g.id}
	if add >= 0 {
		m.Add = p.nodes[add].id
		g.live = append(g.live, add)
		p.held[add] = append(p.held[add], gi)
		p.setLoad(add, p.load[add]+1)
		p.addBusy(add)
	}
	if rm.id != "" {
		m.Remove = rm.id
		if i := slices.Index(g.live, rm.node); rm.node >= 0 && i >= 0 {
			g.live = slices.Delete(g.live, i, i+1)
			h := p.held[rm.node]
			j := slices.Index(h, gi)
			p.held[rm.node] = slices.Delete(h, j, j+1)
			p.setLoad(rm.node, p.load[rm.node]-1)
		} else {
			g.bad = slices.DeleteFunc(g.bad, func(b replica) bool { return b.id == rm.id })
		}
		if rm.node >= 0 && p.nodes[rm.node].state != Dead {
			p.addBusy(rm.node)
		}
	}
	g.locked = true
	p.moves = append(p.moves, m)
}

// setLoad changes an active node's load in every index holding it.
func (p *planner) setLoad(n int32, l int) {
	old := p.load[n]
	p.load[n] = l
	p.all.remove(n, old)
	p.all.insert(n, l)
	if p.inDest[n] {
		z := p.nodes[n].zone
		p.dest[z].remove(n, old)
		p.dest[z].insert(n, l)
		p.destAll.remove(n, old)
		p.destAll.insert(n, l)
	}
	if p.inSrc[n] {
		p.src.remove(n, old)
		p.src.insert(n, l)
	}
}

// addBusy counts one more move on node n and takes it out of the indexes of nodes that may
// take part in moves once it reaches its bound.
func (p *planner) addBusy(n int32) {
	p.busy[n]++
	if !p.full(n) {
		return
	}
	if p.inDest[n] {
		z := p.nodes[n].zone
		p.dest[z].remove(n, p.load[n])
		p.destAll.remove(n, p.load[n])
		if p.avail[z]--; p.avail[z] == 0 {
			p.availZones--
		}
		p.inDest[n] = false
	}
	if p.inSrc[n] {
		p.src.remove(n, p.load[n])
		p.inSrc[n] = false
	}
}
