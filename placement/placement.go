package placement

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// DefaultMaxMovesPerNode is the number of moves a node takes part in at once (as the node a
// replica is added to or removed from) when [Input.MaxMovesPerNode] is 0.
const DefaultMaxMovesPerNode = 2

// ErrInvalid is wrapped by every error [Plan] and [Leaders] return for an input they refuse.
var ErrInvalid = errors.New("placement: invalid input")

// NodeState is what a node may be used for.
type NodeState uint8

const (
	// Active nodes hold replicas and receive new ones.
	Active NodeState = iota
	// Draining nodes receive nothing; their replicas are moved off.
	Draining
	// Dead nodes receive nothing; their replicas are re-created elsewhere.
	Dead
)

var stateNames = [...]string{Active: "active", Draining: "draining", Dead: "dead"}

// String returns "active", "draining" or "dead".
func (s NodeState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("NodeState(%d)", uint8(s))
}

// MarshalText encodes the state as its name, so maps and JSON stay readable.
func (s NodeState) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("placement: encode node state %d: unknown state", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name written by MarshalText.
func (s *NodeState) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = NodeState(i)
			return nil
		}
	}
	return fmt.Errorf("placement: decode node state %q: want active, draining or dead", b)
}

// Node is a member of the cluster as placement sees it. Nodes without a zone label share
// the zone "".
type Node struct {
	ID    string    `json:"id"`
	Zone  string    `json:"zone,omitempty"`
	State NodeState `json:"state"`
}

// Group is the current placement of one partition group: the nodes in its Raft
// configuration, as voters and as learners (non-voters still catching up). Plan counts
// learners as replicas; one left outside any move in flight is for the controller to
// promote or remove.
type Group struct {
	ID       uint32   `json:"id"`
	Voters   []string `json:"voters"`
	Learners []string `json:"learners,omitempty"`
}

// Move relocates one replica of a group: add a replica on node Add (as a learner, promoted
// to voter once caught up), then remove the replica on node Remove. Either side may be
// empty: a move with only Add creates a missing replica, one with only Remove drops a
// surplus one or one on a node that is gone.
type Move struct {
	Group  uint32 `json:"group"`
	Add    string `json:"add,omitempty"`
	Remove string `json:"remove,omitempty"`
}

// String renders the move as "g7: +n3 -n1".
func (m Move) String() string {
	s := fmt.Sprintf("g%d:", m.Group)
	if m.Add != "" {
		s += " +" + m.Add
	}
	if m.Remove != "" {
		s += " -" + m.Remove
	}
	return s
}

// Input is everything a placement decision depends on.
type Input struct {
	// Nodes are the cluster's nodes, in any order.
	Nodes []Node
	// Groups are the current placements, in any order.
	Groups []Group
	// Replicas is the number of voters every group should have (at least 1).
	Replicas int
	// InFlight are the moves started and not finished yet, in any order. Plan treats them
	// as done when it decides, and counts them against the throttles.
	InFlight []Move
	// MaxMovesPerNode bounds the moves a node takes part in at once, in flight and new
	// together: 0 means DefaultMaxMovesPerNode, a negative value means no bound. Dead nodes
	// do no work in a move and are not bounded.
	MaxMovesPerNode int
}

// Transfer hands the leadership of a group from one voter to another.
type Transfer struct {
	Group uint32 `json:"group"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// nodeInfo is a node of the sorted node table.
type nodeInfo struct {
	id    string
	zone  int32
	state NodeState
}

// replica is a replica on a node that is not active; node is -1 when the node is unknown.
type replica struct {
	id   string
	node int32
}

// groupInfo is a group's effective placement (in-flight moves applied).
type groupInfo struct {
	id     uint32
	live   []int32   // replicas on active nodes
	bad    []replica // replicas on draining, dead or unknown nodes
	voters []string  // the current voters, for leaders and the quorum check
	leave  string    // the node a move in flight removes a replica from, if any
	locked bool      // a move is in flight or planned: no other move this call
	stuck  bool      // the group lost its quorum: nothing can change its configuration
}

// cluster is the validated, sorted form of an Input.
type cluster struct {
	nodes  []nodeInfo // sorted by ID; a node's index orders ties
	byID   map[string]int32
	zones  int
	groups []groupInfo // sorted by ID
	active int
}

// load sorts and checks an input, applies the in-flight moves and returns the result with
// the busy count (in-flight moves) of every node.
func load(in Input) (*cluster, []int, error) {
	if in.Replicas < 1 {
		return nil, nil, fmt.Errorf("%w: replicas is %d, want at least 1", ErrInvalid, in.Replicas)
	}
	c := &cluster{byID: make(map[string]int32, len(in.Nodes))}
	nodes := slices.Clone(in.Nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	zoneNames := make([]string, 0, 8)
	for _, n := range nodes {
		if n.ID == "" {
			return nil, nil, fmt.Errorf("%w: a node has an empty ID", ErrInvalid)
		}
		if int(n.State) >= len(stateNames) {
			return nil, nil, fmt.Errorf("%w: node %q has unknown state %d", ErrInvalid, n.ID, n.State)
		}
		if _, dup := c.byID[n.ID]; dup {
			return nil, nil, fmt.Errorf("%w: node %q is listed twice", ErrInvalid, n.ID)
		}
		c.byID[n.ID] = int32(len(c.nodes))
		c.nodes = append(c.nodes, nodeInfo{id: n.ID, state: n.State})
		zoneNames = append(zoneNames, n.Zone)
		if n.State == Active {
			c.active++
		}
	}
	// Zones are numbered in name order so that nothing depends on the input's order.
	sortedZones := slices.Compact(slices.Sorted(slices.Values(zoneNames)))
	c.zones = len(sortedZones)
	for i := range c.nodes {
		z, _ := slices.BinarySearch(sortedZones, zoneNames[i])
		c.nodes[i].zone = int32(z)
	}

	groups := slices.Clone(in.Groups)
	slices.SortFunc(groups, func(a, b Group) int { return cmp.Compare(a.ID, b.ID) })
	for i := 1; i < len(groups); i++ {
		if groups[i].ID == groups[i-1].ID {
			return nil, nil, fmt.Errorf("%w: group %d is listed twice", ErrInvalid, groups[i].ID)
		}
	}
	flight := slices.Clone(in.InFlight)
	slices.SortFunc(flight, func(a, b Move) int { return cmp.Compare(a.Group, b.Group) })
	busy := make([]int, len(c.nodes))
	c.groups = make([]groupInfo, len(groups))
	// Every group's replica lists are cut from one array, capped so that appending to one
	// copies it out instead of overwriting the next.
	total := 0
	for _, g := range groups {
		total += len(g.Voters) + len(g.Learners) + 1
	}
	arena := make([]int32, 0, total)
	var members []string
	fi := 0
	for gi, g := range groups {
		var err error
		if members, err = membersOf(members[:0], g); err != nil {
			return nil, nil, err
		}
		info := groupInfo{id: g.ID, voters: g.Voters}
		if fi < len(flight) && flight[fi].Group < g.ID {
			return nil, nil, fmt.Errorf("%w: move %v in flight for unknown group %d", ErrInvalid, flight[fi], flight[fi].Group)
		}
		if fi < len(flight) && flight[fi].Group == g.ID {
			m := flight[fi]
			fi++
			if fi < len(flight) && flight[fi].Group == g.ID {
				return nil, nil, fmt.Errorf("%w: group %d has two moves in flight (%v and %v)", ErrInvalid, g.ID, m, flight[fi])
			}
			if err := checkMove(m); err != nil {
				return nil, nil, err
			}
			info.locked = true
			info.leave = m.Remove
			if m.Add != "" && !slices.Contains(members, m.Add) {
				members = append(members, m.Add)
			}
			if m.Remove != "" {
				members = slices.DeleteFunc(members, func(id string) bool { return id == m.Remove })
			}
			for _, id := range []string{m.Add, m.Remove} {
				if n, ok := c.byID[id]; ok && c.nodes[n].state != Dead {
					busy[n]++
				}
			}
		}
		slices.Sort(members)
		start := len(arena)
		for _, id := range members {
			n, ok := c.byID[id]
			switch {
			case ok && c.nodes[n].state == Active:
				arena = append(arena, n)
			case ok:
				info.bad = append(info.bad, replica{id: id, node: n})
			default:
				info.bad = append(info.bad, replica{id: id, node: -1})
			}
		}
		info.live = arena[start:len(arena):len(arena)]
		info.stuck = !c.hasQuorum(g.Voters)
		c.groups[gi] = info
	}
	if fi < len(flight) {
		return nil, nil, fmt.Errorf("%w: move %v in flight for unknown group %d", ErrInvalid, flight[fi], flight[fi].Group)
	}
	return c, busy, nil
}

// membersOf appends a group's voters and learners to members, refusing a node listed
// twice.
func membersOf(members []string, g Group) ([]string, error) {
	for _, list := range [][]string{g.Voters, g.Learners} {
		for _, id := range list {
			if id == "" {
				return nil, fmt.Errorf("%w: group %d lists an empty node ID", ErrInvalid, g.ID)
			}
			if slices.Contains(members, id) {
				return nil, fmt.Errorf("%w: group %d lists node %q twice", ErrInvalid, g.ID, id)
			}
			members = append(members, id)
		}
	}
	return members, nil
}

func checkMove(m Move) error {
	switch {
	case m.Add == "" && m.Remove == "":
		return fmt.Errorf("%w: move in flight for group %d adds and removes nothing", ErrInvalid, m.Group)
	case m.Add == m.Remove:
		return fmt.Errorf("%w: move in flight for group %d adds and removes node %q", ErrInvalid, m.Group, m.Add)
	}
	return nil
}

// hasQuorum reports whether a majority of the voters is on nodes that are not dead, so that
// the group can still commit a configuration change. A group without voters (not created
// yet) counts as able.
func (c *cluster) hasQuorum(voters []string) bool {
	if len(voters) == 0 {
		return true
	}
	alive := 0
	for _, id := range voters {
		if n, ok := c.byID[id]; ok && c.nodes[n].state != Dead {
			alive++
		}
	}
	return alive >= len(voters)/2+1
}
