package harness

import (
	"testing"

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
