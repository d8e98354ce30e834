package harness

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/tally-db/tally/jepsen/check"
)

func TestReplaceAddr(t *testing.T) {
	got := replaceAddr("mysql://root@tcp(127.0.0.1:3306)/jepsen_1", "127.0.0.1:3306", "127.0.0.1:40001")
	if want := "mysql://root@tcp(127.0.0.1:40001)/jepsen_1"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestComparedEveryGroup(t *testing.T) {
	s := func(node string, g int, idx uint64) check.ReplicaSample {
		return check.ReplicaSample{Node: node, Group: g, Index: idx, Hash: "h"}
	}
	cases := []struct {
		name    string
		samples []check.ReplicaSample
		groups  int
		want    bool
	}{
		{"nothing", nil, 1, false},
		{"one node only", []check.ReplicaSample{s("n1", 0, 5), s("n1", 0, 5)}, 1, false},
		{"two nodes, different indexes", []check.ReplicaSample{s("n1", 0, 5), s("n2", 0, 6)}, 1, false},
		{"two nodes at one index", []check.ReplicaSample{s("n1", 0, 5), s("n2", 0, 5)}, 1, true},
		{"second group missing", []check.ReplicaSample{s("n1", 0, 5), s("n2", 0, 5), s("n1", 1, 5)}, 2, false},
	}
	for _, c := range cases {
		if got := comparedEveryGroup(c.samples, c.groups); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecodeOutput(t *testing.T) {
	body := `{"id":"1-40-2","stream":"Alerts","app":"Jepsen","ts":5,"expired":false,"data":{"key":"k3","producer":"p1","seq":7,"i":1,"ts":1767225600123,"v":9}}`
	o, err := decodeOutput([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := check.Event{Key: "k3", Producer: "p1", Seq: 7, I: 1, TS: 1767225600123, V: 9}
	if o.ID != "1-40-2" || o.Stream != "Alerts" || o.Body != body || o.Data != want {
		t.Fatalf("decoded %+v", o)
	}
	if _, err := decodeOutput([]byte(`{"id":`)); err == nil {
		t.Fatal("a truncated output decoded without error")
	}
}

func TestValidNemesis(t *testing.T) {
	for _, n := range append([]string{Mixed}, Nemeses...) {
		if !ValidNemesis(n) {
			t.Errorf("%s is not valid", n)
		}
	}
	if ValidNemesis("meteor") {
		t.Error("an unknown nemesis is valid")
	}
}

func TestClusterMapSettled(t *testing.T) {
	var m clusterMap
	if err := json.Unmarshal([]byte(`{"index":9,"replicas":3,
		"nodes":[{"id":"n1","state":"active"},{"id":"n2","state":"active"},{"id":"n3","state":"active"},{"id":"n4","state":"draining"}],
		"groups":[{"id":0,"voters":["n1","n2","n4"],"move":{"group":0,"add":"n3","remove":"n4"}},{"id":1,"voters":["n1","n2","n3"]}],
		"controller":{"id":"n2"}}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.settled(3) {
		t.Error("settled with a move in progress and a node draining")
	}
	if add, remove, ok := m.moving("n4"); !ok || add != "n3" || remove != "n4" {
		t.Errorf("moving(n4) = %q %q %v", add, remove, ok)
	}
	if _, _, ok := m.moving("n1"); ok {
		t.Error("n1 reported moving")
	}
	s := m.sample("n2", time.Second)
	if s.Groups[0].Move != "+n3 -n4" || s.Nodes["n4"] != "draining" || s.Index != 9 {
		t.Errorf("sample %+v", s)
	}
	m.Nodes = m.Nodes[:3]
	m.Groups[0].Move, m.Groups[0].Voters = nil, []string{"n1", "n2", "n3"}
	if !m.settled(3) || m.has("n4") || !m.has("n3") {
		t.Errorf("settled=%v has(n4)=%v has(n3)=%v after the move", m.settled(3), m.has("n4"), m.has("n3"))
	}
	if m.settled(4) {
		t.Error("settled with 3 voters where 4 are wanted")
	}
}

func TestDrainable(t *testing.T) {
	c := &cluster{replicas: 3}
	for i := range 5 {
		c.nodes = append(c.nodes, &node{id: fmt.Sprintf("n%d", i+1)})
	}
	join := func(n *node) { n.member, n.cmd = true, &exec.Cmd{} }
	for _, n := range c.nodes[:3] {
		join(n)
	}
	if got := c.drainable(true); len(got) != 0 {
		t.Errorf("three members: drainable %v", ids(got))
	}
	join(c.nodes[3]) // n4, zone zb with n2
	if got := ids(c.drainable(true)); !slices.Equal(got, []string{"n1", "n2", "n3", "n4"}) {
		t.Errorf("n1..n4 in two zones: drainable %v", got)
	}
	c.nodes[1].member = false // n2 drained: n4 is zb's only node
	join(c.nodes[4])
	if got := ids(c.drainable(true)); !slices.Equal(got, []string{"n1", "n3", "n5"}) {
		t.Errorf("n1 n3 n4 n5: drainable %v", got)
	}
	if got := ids(c.drainable(false)); len(got) != 4 {
		t.Errorf("without zones: drainable %v", got)
	}
	if got := ids(c.free()); !slices.Equal(got, []string{"n2"}) {
		t.Errorf("free %v", got)
	}
}
