package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// mapJSON is GET /v1/cluster/map as a node writes it: four nodes, one draining, and a move
// taking group 1 from n2 to n4.
const mapJSON = `{"index":57,"replicas":3,
"nodes":[{"id":"n1","raft_addr":"127.0.0.1:7071","http_addr":"127.0.0.1:7070","zone":"a","state":"active"},
{"id":"n2","raft_addr":"127.0.0.1:7081","http_addr":"127.0.0.1:7080","zone":"b","state":"draining"},
{"id":"n3","raft_addr":"127.0.0.1:7091","http_addr":"127.0.0.1:7090","state":"active"},
{"id":"n4","raft_addr":"127.0.0.1:7101","http_addr":"127.0.0.1:7100","zone":"a","state":"active"}],
"groups":[{"id":0,"shard_id":"s0","keys":"fnv1a32(key) mod 2 = 0","voters":["n1","n3","n4"]},
{"id":1,"shard_id":"s1","keys":"fnv1a32(key) mod 2 = 1","voters":["n1","n2","n3"],"move":{"group":1,"add":"n4","remove":"n2"}}],
"controller":{"id":"n3","http_addr":"127.0.0.1:7090"}}`

// TestMap decodes the cluster map, counts replicas per node (a move's new replica
// included) and lists the moves in progress.
func TestMap(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.Method + " " + r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, mapJSON)
	}))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.Map(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if path != "GET /v1/cluster/map" {
		t.Errorf("request %q", path)
	}
	if m.Index != 57 || m.Replicas != 3 || len(m.Nodes) != 4 || len(m.Groups) != 2 {
		t.Fatalf("map %+v", m)
	}
	if n := m.Nodes[1]; n != (client.ClusterNode{ID: "n2", RaftAddr: "127.0.0.1:7081", HTTPAddr: "127.0.0.1:7080", Zone: "b", State: client.NodeDraining}) {
		t.Errorf("node n2 decoded as %+v", n)
	}
	if g := m.Groups[0]; g.ShardID != "s0" || g.Keys != "fnv1a32(key) mod 2 = 0" || g.Move != nil {
		t.Errorf("group 0 decoded as %+v", g)
	}
	if m.Controller == nil || *m.Controller != (client.Leader{ID: "n3", HTTPAddr: "127.0.0.1:7090"}) {
		t.Errorf("controller %+v", m.Controller)
	}
	got := map[string]int{}
	for _, n := range m.Nodes {
		got[n.ID] = m.ReplicasOn(n.ID)
	}
	if want := map[string]int{"n1": 2, "n2": 1, "n3": 2, "n4": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("replicas per node %v, want %v", got, want)
	}
	mv := m.Moves()
	if len(mv) != 1 || mv[0] != (client.Move{Group: 1, Add: "n4", Remove: "n2"}) || mv[0].String() != "g1: +n4 -n2" {
		t.Errorf("moves %+v", mv)
	}
	if s := (client.Move{Group: 7, Remove: "n1"}).String(); s != "g7: -n1" {
		t.Errorf("a removal renders as %q", s)
	}

	// A node without a cluster map answers 404: an *APIError, not an empty map.
	none := fakeNode(t, http.StatusNotFound, nil, `{"error":"this node runs without a cluster map"}`)
	cn, _ := client.New([]string{none.URL}, client.Options{})
	var ae *client.APIError
	if _, err := cn.Map(ctx); !errors.As(err, &ae) || ae.Status != 404 || ae.Message != "this node runs without a cluster map" {
		t.Errorf("Map of a node without one: %v", err)
	}
}

// TestDrain posts to the node's drain endpoint with the client's credentials, fails over
// past a 503 and returns the server's refusal as an *APIError.
func TestDrain(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/cluster/nodes/n9/drain" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no node \"n9\" in the cluster map"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"status":"draining","id":"n2"}`)
	}))
	defer srv.Close()
	busy := fakeNode(t, http.StatusServiceUnavailable, nil, `{"error":"no controller leader is known right now; retry shortly"}`)
	c, _ := client.New([]string{busy.URL, srv.URL}, client.Options{User: "ops", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Drain(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	var ae *client.APIError
	if err := c.Drain(ctx, "n9"); !errors.As(err, &ae) || ae.Status != 404 || !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("drain of an unknown node: %v", err)
	}
	if err := c.Drain(ctx, ""); err == nil {
		t.Error("drain of an empty ID: no error")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"POST /v1/cluster/nodes/n2/drain Basic b3BzOnB3", "POST /v1/cluster/nodes/n9/drain Basic b3BzOnB3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}
