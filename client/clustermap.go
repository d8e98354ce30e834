package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// Node states in the cluster map (ClusterNode.State).
const (
	// NodeActive nodes hold replicas and receive new ones.
	NodeActive = "active"
	// NodeDraining nodes receive nothing; their replicas are moved off, then they leave
	// the map.
	NodeDraining = "draining"
	// NodeDead nodes were unreachable too long; their replicas are re-created elsewhere.
	NodeDead = "dead"
)

// ClusterNode is a member of the cluster in the cluster map.
type ClusterNode struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// Zone is the node's --zone label ("" when it has none).
	Zone string `json:"zone,omitempty"`
	// State is NodeActive, NodeDraining or NodeDead.
	State string `json:"state"`
}

// Move is a replica move in progress: group Group gains a replica on node Add and loses
// the one on node Remove (either may be empty).
type Move struct {
	Group  uint32 `json:"group"`
	Add    string `json:"add,omitempty"`
	Remove string `json:"remove,omitempty"`
}

// String renders the move as "g3: +n7 -n2".
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

// ClusterApp is a deployed app in the cluster map: its name and the controller group's Raft
// index of the entry that deployed it.
type ClusterApp struct {
	Name  string `json:"name"`
	Index uint64 `json:"index"`
}

// ClusterGroup is one partition group in the cluster map.
type ClusterGroup struct {
	ID uint32 `json:"id"`
	// ShardID names the group's rows in the shared store.
	ShardID string `json:"shard_id"`
	// Keys describes the share of the key hash the group owns.
	Keys string `json:"keys"`
	// Voters are the nodes voting in the group once its last move finished.
	Voters []string `json:"voters"`
	// Move is the move in progress, nil when none.
	Move *Move `json:"move,omitempty"`
}

// ClusterMap is the replicated cluster map (GET /v1/cluster/map): the nodes, the groups,
// where each group's replicas are and the moves in progress.
type ClusterMap struct {
	// Index is the controller group's Raft index of the map's last change.
	Index uint64 `json:"index"`
	// Replicas is the cluster's replication factor.
	Replicas int            `json:"replicas"`
	Nodes    []ClusterNode  `json:"nodes"`
	Groups   []ClusterGroup `json:"groups"`
	// Apps are the deployed apps, by name (a node older than the map's apps sends none).
	Apps []ClusterApp `json:"apps,omitempty"`
	// Controller is the controller group's leader, nil when the answering node knows none.
	Controller *Leader `json:"controller"`
}

// ReplicasOn returns how many groups node id holds a replica of: those it votes in, and
// those a move is adding it to.
func (m *ClusterMap) ReplicasOn(id string) int {
	n := 0
	for _, g := range m.Groups {
		if slices.Contains(g.Voters, id) || (g.Move != nil && g.Move.Add == id) {
			n++
		}
	}
	return n
}

// Moves returns the moves in progress, by group.
func (m *ClusterMap) Moves() []Move {
	var out []Move
	for _, g := range m.Groups {
		if g.Move != nil {
			out = append(out, *g.Move)
		}
	}
	return out
}

// Map returns the cluster map as the first node that answers holds it.
func (c *Client) Map(ctx context.Context) (*ClusterMap, error) {
	var m ClusterMap
	if err := c.getJSON(ctx, "/v1/cluster/map", nil, &m); err != nil {
		return nil, fmt.Errorf("cluster map: %w", err)
	}
	return &m, nil
}

// Drain starts draining node id (POST /v1/cluster/nodes/ID/drain, admin): its replicas
// move to other nodes, then it leaves the cluster map. It returns once the cluster
// recorded the node as draining; Map shows the progress. Draining a node twice is
// harmless, so the request fails over like a read.
func (c *Client) Drain(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("client: drain: empty node ID: give the ID of a node in the cluster map")
	}
	resp, err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/cluster/nodes/" + url.PathEscape(id) + "/drain",
		header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return fmt.Errorf("drain node %s: %w", id, err)
	}
	var ans struct {
		Status string `json:"status"`
	}
	if err := decode(resp, &ans); err != nil {
		return fmt.Errorf("drain node %s: %w", id, err)
	}
	return nil
}
