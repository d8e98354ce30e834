package httpapi

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/placement"
)

// fakeCluster is a Cluster that holds a fixed map.
type fakeCluster struct{ m clustermap.Map }

func (f fakeCluster) Map() clustermap.Map                         { return f.m }
func (f fakeCluster) ControllerLeader() (string, string)          { return "", "" }
func (f fakeCluster) Register(context.Context, JoinRequest) error { return nil }
func (f fakeCluster) Drain(context.Context, string) error         { return nil }

// slotGroup is a node's slot for a group: it hosts a replica or it does not.
type slotGroup struct {
	Group
	hosted bool
}

func (s slotGroup) Replica() (Group, bool) { return s, s.hosted }

// TestMapCollector: the node's open replicas, the map's nodes by state (zeros included)
// and its moves in progress; without a map, only the replicas.
func TestMapCollector(t *testing.T) {
	m := clustermap.Map{Index: 9, Replicas: 3,
		Nodes: []clustermap.Node{{ID: "n1"}, {ID: "n2", State: placement.Draining}, {ID: "n3"}, {ID: "n4"}},
		Groups: []clustermap.Group{
			{ID: 0, Voters: []string{"n1", "n2", "n3"}, Move: &placement.Move{Group: 0, Add: "n4", Remove: "n2"}},
			{ID: 1, Voters: []string{"n1", "n3", "n4"}},
			{ID: 2, Voters: []string{"n2", "n3", "n4"}, Move: &placement.Move{Group: 2, Add: "n1", Remove: "n2"}},
		}}
	groups := []Group{slotGroup{hosted: true}, slotGroup{hosted: false}, slotGroup{hosted: true}}
	got := gather(t, mapCollector{groups: groups, cluster: fakeCluster{m}})
	want := map[string]float64{
		"tally_replicas":                        2,
		`tally_cluster_nodes{state="active"}`:   3,
		`tally_cluster_nodes{state="draining"}`: 1,
		`tally_cluster_nodes{state="dead"}`:     0,
		"tally_moves_in_progress":               2,
	}
	if !maps.Equal(got, want) {
		t.Errorf("collected %v, want %v", got, want)
	}

	// No cluster map (or one not created yet): the replicas alone.
	for _, c := range []Cluster{nil, fakeCluster{}} {
		if got := gather(t, mapCollector{groups: groups, cluster: c}); !maps.Equal(got, map[string]float64{"tally_replicas": 2}) {
			t.Errorf("cluster %v: collected %v", c, got)
		}
	}
}

// gather collects c's gauges by series (name{label="value"} → value).
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			out[name] = m.GetGauge().GetValue()
		}
	}
	return out
}
