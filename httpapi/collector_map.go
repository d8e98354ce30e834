package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tally-db/tally/placement"
)

// Descriptions of the metrics read from the cluster map and the node's replicas.
var (
	descNodeReplicas = prometheus.NewDesc("tally_replicas",
		"Partition group replicas open on this node.", nil, nil)
	descClusterNodes = prometheus.NewDesc("tally_cluster_nodes",
		"Nodes in the cluster map by state (active, draining, dead), as this node's copy of the map has them.", []string{"state"}, nil)
	descClusterMoves = prometheus.NewDesc("tally_moves_in_progress",
		"Replica moves in progress in the cluster map, as this node's copy of the map has them.", nil, nil)
)

// mapCollector reads the node's replicas and its copy of the cluster map at scrape time.
// Without a cluster map (cluster nil, or a map not yet created) it exports only
// tally_replicas.
type mapCollector struct {
	groups  []Group
	cluster Cluster
}

// Describe implements prometheus.Collector.
func (c mapCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNodeReplicas
	ch <- descClusterNodes
	ch <- descClusterMoves
}

// Collect implements prometheus.Collector.
func (c mapCollector) Collect(ch chan<- prometheus.Metric) {
	open := 0
	for _, g := range c.groups {
		if _, hosted := replicaOf(g); hosted {
			open++
		}
	}
	ch <- prometheus.MustNewConstMetric(descNodeReplicas, prometheus.GaugeValue, float64(open))
	if c.cluster == nil {
		return
	}
	m := c.cluster.Map()
	if !m.Initialized() {
		return
	}
	var byState [placement.Dead + 1]int
	for _, n := range m.Nodes {
		if int(n.State) < len(byState) {
			byState[n.State]++
		}
	}
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(descClusterNodes, prometheus.GaugeValue, float64(n), placement.NodeState(s).String())
	}
	ch <- prometheus.MustNewConstMetric(descClusterMoves, prometheus.GaugeValue, float64(len(m.Moves())))
}
