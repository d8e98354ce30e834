// Package clustermap is the replicated cluster map: the nodes of a cluster, its partition
// groups, where each group's replicas are placed, the moves in progress and the deployed
// apps. It is the state
// of the controller group's Raft FSM ([FSM]); every node holds a replica of it (a voter on up
// to five nodes, a non-voter elsewhere) and reconciles its own replicas against it.
//
// Decisions are committed to the map before they are acted on: a move is recorded with
// [Start] before its new replica is added, and leaves the map with [Finish] only once the
// group's Raft configuration has changed. A controller that crashes mid-move so finds the
// move in the map and carries it on.
package clustermap

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/tally-db/tally/placement"
)

// MaxControllerVoters is the number of nodes that vote in the controller group; the other
// nodes follow it as non-voters.
const MaxControllerVoters = 5

// Node is a member of the cluster.
type Node struct {
	ID       string              `json:"id"`
	RaftAddr string              `json:"raft_addr"`
	HTTPAddr string              `json:"http_addr"`
	Zone     string              `json:"zone,omitempty"`
	State    placement.NodeState `json:"state"`
}

// Group is one partition group: the share of the key hash it owns, its shard ID in the
// shared store, its voters once the last move finished, and the move in progress.
type Group struct {
	ID     uint32          `json:"id"`
	Shard  string          `json:"shard_id"`
	Keys   string          `json:"keys"`
	Voters []string        `json:"voters"`
	Move   *placement.Move `json:"move,omitempty"`
}

// App is a deployed app: every group runs exactly the map's apps. Index is the Raft index
// of the map entry that deployed this text.
type App struct {
	Name  string `json:"name"`
	Text  string `json:"text,omitempty"`
	Index uint64 `json:"index"`
}

// Map is the cluster map at Index, the Raft index of the last change applied.
//
// Apps are sorted by name. AppsIndex is the index of the last deploy or undeploy (0: none).
// AppsComplete says the map holds every deployed app: true for a map created since apps are
// kept in it, and for an older one once its apps were adopted from a group ([Adopt]);
// until then groups may run apps the map does not name, and nothing is undeployed for
// being missing from it. A map encoded before apps were kept decodes with none.
type Map struct {
	Index        uint64  `json:"index"`
	Replicas     int     `json:"replicas"`
	Nodes        []Node  `json:"nodes"`
	Groups       []Group `json:"groups"`
	Apps         []App   `json:"apps,omitempty"`
	AppsIndex    uint64  `json:"apps_index,omitempty"`
	AppsComplete bool    `json:"apps_complete,omitempty"`
}

// Initialized reports whether the cluster was created ([Init] applied).
func (m *Map) Initialized() bool { return m.Replicas > 0 }

// Node returns the node with the ID.
func (m *Map) Node(id string) (Node, bool) {
	i, ok := slices.BinarySearchFunc(m.Nodes, id, func(n Node, id string) int { return cmp.Compare(n.ID, id) })
	if !ok {
		return Node{}, false
	}
	return m.Nodes[i], true
}

// Hosts returns the groups that should have a replica on node id: those it is a voter of, and
// those a move is adding it to or still removing it from.
func (m *Map) Hosts(id string) []uint32 {
	var out []uint32
	for _, g := range m.Groups {
		if slices.Contains(g.Voters, id) || (g.Move != nil && (g.Move.Add == id || g.Move.Remove == id)) {
			out = append(out, g.ID)
		}
	}
	return out
}

// ReplicasOn returns how many groups node id holds (as voter or a move's new replica).
func (m *Map) ReplicasOn(id string) int {
	n := 0
	for _, g := range m.Groups {
		if slices.Contains(g.Voters, id) || (g.Move != nil && g.Move.Add == id && !slices.Contains(g.Voters, id)) {
			n++
		}
	}
	return n
}

// App returns the deployed app with the name.
func (m *Map) App(name string) (App, bool) {
	i, ok := slices.BinarySearchFunc(m.Apps, name, byName)
	if !ok {
		return App{}, false
	}
	return m.Apps[i], true
}

// Moves returns the moves in progress, by group.
func (m *Map) Moves() []placement.Move {
	var out []placement.Move
	for _, g := range m.Groups {
		if g.Move != nil {
			out = append(out, *g.Move)
		}
	}
	return out
}

// PlacementInput is the map as placement.Plan and placement.Leaders read it.
func (m *Map) PlacementInput(maxMovesPerNode int) placement.Input {
	in := placement.Input{Replicas: m.Replicas, MaxMovesPerNode: maxMovesPerNode}
	for _, n := range m.Nodes {
		in.Nodes = append(in.Nodes, placement.Node{ID: n.ID, Zone: n.Zone, State: n.State})
	}
	for _, g := range m.Groups {
		pg := placement.Group{ID: g.ID, Voters: slices.Clone(g.Voters)}
		in.Groups = append(in.Groups, pg)
		if g.Move != nil {
			in.InFlight = append(in.InFlight, *g.Move)
		}
	}
	return in
}

// Clone returns a deep copy.
func (m *Map) Clone() Map {
	c := *m
	c.Nodes = slices.Clone(m.Nodes)
	c.Apps = slices.Clone(m.Apps)
	c.Groups = make([]Group, len(m.Groups))
	for i, g := range m.Groups {
		g.Voters = slices.Clone(g.Voters)
		if g.Move != nil {
			mv := *g.Move
			g.Move = &mv
		}
		c.Groups[i] = g
	}
	return c
}

// KeysOf describes the share of the key hash group g of n owns, as partition.For assigns it.
func KeysOf(g uint32, n int) string {
	if n == 1 {
		return "all keys"
	}
	return fmt.Sprintf("fnv1a32(key) mod %d = %d", n, g)
}
