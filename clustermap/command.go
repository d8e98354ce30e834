package clustermap

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/tally-db/tally/placement"
)

// ErrRefused is wrapped by the result of a command the map refuses (an unknown node, a move
// on a group that has one). A refused command changes nothing.
var ErrRefused = errors.New("clustermap: refused")

// Command is one change to the map, JSON-encoded in a Raft log entry.
type Command struct {
	// Op is "init", "register", "state", "forget", "start", "finish", "abort", "deploy",
	// "undeploy" or "adopt".
	Op string `json:"op"`
	// Init: the replication factor and the groups; AppsComplete: the map keeps the apps
	// from its creation (an init written before apps were kept has it false).
	Replicas     int     `json:"replicas,omitempty"`
	Groups       []Group `json:"groups,omitempty"`
	AppsComplete bool    `json:"apps_complete,omitempty"`
	// Deploy: the app's name and text; undeploy: its name.
	App *App `json:"app,omitempty"`
	// Adopt: the apps a group runs.
	Apps []App `json:"apps,omitempty"`
	// Init, register: the node; state, forget: Node.ID and, for state, Node.State.
	Node *Node `json:"node,omitempty"`
	// Start: the moves; finish, abort: the move's group (Moves[0].Group) and, for finish,
	// the voters after it.
	Moves  []placement.Move `json:"moves,omitempty"`
	Voters []string         `json:"voters,omitempty"`
}

// Init creates the cluster: replicas per group, the groups placed on the first node.
func Init(replicas int, first Node, shards []string) Command {
	gs := make([]Group, len(shards))
	for i, s := range shards {
		gs[i] = Group{ID: uint32(i), Shard: s, Keys: KeysOf(uint32(i), len(shards)), Voters: []string{first.ID}}
	}
	return Command{Op: "init", Replicas: replicas, Groups: gs, Node: &first, AppsComplete: true}
}

// Deploy records an app (replacing one of the same name) before it is deployed to the
// groups. The same text again changes nothing.
func Deploy(name, text string) Command {
	return Command{Op: "deploy", App: &App{Name: name, Text: text}}
}

// Undeploy removes an app before it is removed from the groups. An app the map does not
// hold changes nothing.
func Undeploy(name string) Command { return Command{Op: "undeploy", App: &App{Name: name}} }

// Adopt records the apps a group runs in a map created before the map kept apps, and makes
// the map the apps' record from then on (Map.AppsComplete). Apps the map holds already are
// kept as they are; a map that holds every app refuses it.
func Adopt(apps []App) Command { return Command{Op: "adopt", Apps: apps} }

// Register adds a node as active, or updates a known node's addresses and zone.
func Register(n Node) Command { return Command{Op: "register", Node: &n} }

// SetState sets a node's state (active, draining, dead).
func SetState(id string, s placement.NodeState) Command {
	return Command{Op: "state", Node: &Node{ID: id, State: s}}
}

// Forget removes a node that holds no replica and is in no move.
func Forget(id string) Command { return Command{Op: "forget", Node: &Node{ID: id}} }

// Start records moves before they are carried out.
func Start(moves ...placement.Move) Command { return Command{Op: "start", Moves: moves} }

// Finish records that group g's move is done and its voters are now voters.
func Finish(g uint32, voters []string) Command {
	return Command{Op: "finish", Moves: []placement.Move{{Group: g}}, Voters: voters}
}

// Abort drops group g's move without changing its voters.
func Abort(g uint32) Command { return Command{Op: "abort", Moves: []placement.Move{{Group: g}}} }

// Encode is the command as a log entry's data.
func (c Command) Encode() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("clustermap: encode command: %v", err)) // plain data: cannot fail
	}
	return b
}

// Apply applies c to m at Raft index. A refused command returns an error wrapping
// ErrRefused and leaves m as it was.
func (m *Map) Apply(index uint64, c Command) error {
	next := m.Clone()
	if err := next.apply(index, c); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRefused, c.Op, err)
	}
	next.Index = index
	*m = next
	return nil
}

func (m *Map) apply(index uint64, c Command) error {
	switch c.Op {
	case "init":
		if m.Initialized() {
			return errors.New("the cluster exists already")
		}
		if c.Replicas < 1 || len(c.Groups) == 0 || c.Node == nil || c.Node.ID == "" {
			return errors.New("init needs replicas ≥ 1, groups and a node")
		}
		m.Replicas, m.Groups = c.Replicas, slices.Clone(c.Groups)
		if c.AppsComplete && !m.AppsComplete {
			m.AppsComplete, m.AppsIndex = true, index
		}
		// A node that joined while the first node was creating the cluster registered
		// before this entry: it stays in the map.
		first := *c.Node
		if i, ok := slices.BinarySearchFunc(m.Nodes, first.ID, byID); ok {
			m.Nodes[i] = first
		} else {
			m.Nodes = slices.Insert(m.Nodes, i, first)
		}
		return nil
	case "register":
		if c.Node == nil || c.Node.ID == "" || c.Node.RaftAddr == "" {
			return errors.New("register needs a node ID and Raft address")
		}
		n := *c.Node
		i, ok := slices.BinarySearchFunc(m.Nodes, n.ID, byID)
		if ok {
			old := m.Nodes[i]
			if old.RaftAddr != n.RaftAddr && m.ReplicasOn(n.ID) > 0 {
				return fmt.Errorf("node %s is a member at %s", n.ID, old.RaftAddr)
			}
			n.State = old.State
			if n.State == placement.Dead {
				n.State = placement.Active
			}
			m.Nodes[i] = n
			return nil
		}
		n.State = placement.Active
		m.Nodes = slices.Insert(m.Nodes, i, n)
		return nil
	case "state":
		if c.Node == nil {
			return errors.New("state needs a node")
		}
		i, ok := slices.BinarySearchFunc(m.Nodes, c.Node.ID, byID)
		if !ok {
			return fmt.Errorf("no node %s", c.Node.ID)
		}
		if c.Node.State > placement.Dead {
			return fmt.Errorf("unknown state %d", c.Node.State)
		}
		m.Nodes[i].State = c.Node.State
		return nil
	case "forget":
		if c.Node == nil {
			return errors.New("forget needs a node")
		}
		i, ok := slices.BinarySearchFunc(m.Nodes, c.Node.ID, byID)
		if !ok {
			return nil // forgotten already
		}
		if len(m.Hosts(c.Node.ID)) > 0 {
			return fmt.Errorf("node %s still holds replicas", c.Node.ID)
		}
		m.Nodes = slices.Delete(m.Nodes, i, i+1)
		return nil
	case "start":
		for _, mv := range c.Moves {
			g, err := m.group(mv.Group)
			if err != nil {
				return err
			}
			if g.Move != nil {
				return fmt.Errorf("group %d has a move in progress (%s)", g.ID, g.Move)
			}
			if mv.Add != "" {
				if _, ok := m.Node(mv.Add); !ok {
					return fmt.Errorf("move %s: no node %s", mv, mv.Add)
				}
				if slices.Contains(g.Voters, mv.Add) {
					return fmt.Errorf("move %s: %s is a voter already", mv, mv.Add)
				}
			}
			if mv.Remove != "" && !slices.Contains(g.Voters, mv.Remove) {
				return fmt.Errorf("move %s: %s is not a voter", mv, mv.Remove)
			}
			if mv.Add == "" && mv.Remove == "" {
				return fmt.Errorf("move of group %d adds and removes nothing", mv.Group)
			}
			mvc := mv
			g.Move = &mvc
		}
		return nil
	case "finish", "abort":
		if len(c.Moves) != 1 {
			return errors.New("needs one group")
		}
		g, err := m.group(c.Moves[0].Group)
		if err != nil {
			return err
		}
		if g.Move == nil {
			return fmt.Errorf("group %d has no move in progress", g.ID)
		}
		if c.Op == "finish" {
			if len(c.Voters) == 0 {
				return errors.New("finish needs the voters")
			}
			g.Voters = slices.Clone(c.Voters)
		}
		g.Move = nil
		return nil
	case "deploy", "undeploy", "adopt":
		return m.applyApps(index, c)
	}
	return fmt.Errorf("unknown command %q", c.Op)
}

func (m *Map) applyApps(index uint64, c Command) error {
	switch c.Op {
	case "deploy":
		if c.App == nil || c.App.Name == "" || c.App.Text == "" {
			return errors.New("deploy needs the app's name and text")
		}
		i, ok := slices.BinarySearchFunc(m.Apps, c.App.Name, byName)
		if ok && m.Apps[i].Text == c.App.Text {
			return nil // deployed already: a retried deploy
		}
		a := App{Name: c.App.Name, Text: c.App.Text, Index: index}
		if ok {
			m.Apps[i] = a
		} else {
			m.Apps = slices.Insert(m.Apps, i, a)
		}
		m.AppsIndex = index
	case "undeploy":
		if c.App == nil || c.App.Name == "" {
			return errors.New("undeploy needs the app's name")
		}
		if i, ok := slices.BinarySearchFunc(m.Apps, c.App.Name, byName); ok {
			m.Apps = slices.Delete(m.Apps, i, i+1)
			m.AppsIndex = index
		}
	case "adopt":
		if m.AppsComplete {
			return errors.New("the map holds the apps already")
		}
		for _, a := range c.Apps {
			if a.Name == "" || a.Text == "" {
				return errors.New("adopt needs every app's name and text")
			}
			i, ok := slices.BinarySearchFunc(m.Apps, a.Name, byName)
			if !ok {
				m.Apps = slices.Insert(m.Apps, i, App{Name: a.Name, Text: a.Text, Index: index})
			}
		}
		m.AppsComplete, m.AppsIndex = true, index
	}
	return nil
}

func (m *Map) group(id uint32) (*Group, error) {
	for i := range m.Groups {
		if m.Groups[i].ID == id {
			return &m.Groups[i], nil
		}
	}
	return nil, fmt.Errorf("no group %d", id)
}

func byID(n Node, id string) int { return cmp.Compare(n.ID, id) }

func byName(a App, name string) int { return cmp.Compare(a.Name, name) }
