package clustermap

import (
	"errors"
	"slices"
	"testing"
)

// TestInitKeepsNodesRegisteredBefore: a node whose join reached the controller's leader
// before the first node created the cluster is still in the map after the init entry, active,
// next to the first node; a second init is refused and changes nothing.
func TestInitKeepsNodesRegisteredBefore(t *testing.T) {
	var m Map
	if err := m.Apply(1, Register(Node{ID: "n3", RaftAddr: "127.0.0.1:7091", HTTPAddr: "127.0.0.1:7090"})); err != nil {
		t.Fatalf("register before init: %v", err)
	}
	if m.Initialized() {
		t.Fatal("a register made the map initialized")
	}
	first := Node{ID: "n1", RaftAddr: "127.0.0.1:7071", HTTPAddr: "127.0.0.1:7070"}
	if err := m.Apply(2, Init(3, first, []string{"0", "1", "2"})); err != nil {
		t.Fatalf("init: %v", err)
	}
	if err := m.Apply(3, Register(Node{ID: "n2", RaftAddr: "127.0.0.1:7081", HTTPAddr: "127.0.0.1:7080"})); err != nil {
		t.Fatalf("register after init: %v", err)
	}
	var ids []string
	for _, n := range m.Nodes {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(ids, []string{"n1", "n2", "n3"}) {
		t.Fatalf("nodes %v, want n1 n2 n3", ids)
	}
	if n3, ok := m.Node("n3"); !ok || n3.State != 0 || n3.RaftAddr != "127.0.0.1:7091" {
		t.Errorf("n3 = %+v, %v; want active at 127.0.0.1:7091", n3, ok)
	}
	if m.Replicas != 3 || len(m.Groups) != 3 || !slices.Equal(m.Groups[0].Voters, []string{"n1"}) {
		t.Errorf("replicas %d, groups %+v; want 3 groups of n1", m.Replicas, m.Groups)
	}

	before := m.Clone()
	err := m.Apply(4, Init(1, Node{ID: "n9", RaftAddr: "127.0.0.1:7151"}, []string{"0"}))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("second init: %v, want ErrRefused", err)
	}
	if m.Index != before.Index || len(m.Nodes) != 3 || len(m.Groups) != 3 {
		t.Errorf("a refused init changed the map: %+v", m)
	}
}
