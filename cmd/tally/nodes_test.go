package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// clusterMapJSON is GET /v1/cluster/map as a node writes it: three nodes (n2 draining), two
// groups, a move taking group 1 from n2 to n3.
const clusterMapJSON = `{"index":57,"replicas":2,"nodes":[{"id":"n1","raft_addr":"127.0.0.1:7071","http_addr":"127.0.0.1:7070","zone":"a","state":"active"},{"id":"n2","raft_addr":"127.0.0.1:7081","http_addr":"127.0.0.1:7080","zone":"b","state":"draining"},{"id":"n3","raft_addr":"127.0.0.1:7091","http_addr":"127.0.0.1:7090","state":"active"}],"groups":[{"id":0,"shard_id":"s0","keys":"fnv1a32(key) mod 2 = 0","voters":["n1","n3"]},{"id":1,"shard_id":"s1","keys":"fnv1a32(key) mod 2 = 1","voters":["n1","n2"],"move":{"group":1,"add":"n3","remove":"n2"}}],"controller":{"id":"n1","http_addr":"127.0.0.1:7070"}}`

// clusterStatusJSON is n1's status of the same cluster: n3 leads group 0, n1 group 1.
const clusterStatusJSON = `{"id":"n1","groups":[{"id":0,"shard_id":"s0","role":"follower","leader":{"id":"n3","http_addr":"127.0.0.1:7090"},"term":2,"commit_index":10,"applied_index":10,"last_index":10,"lag":0,"members":[{"id":"n1","raft_addr":"127.0.0.1:7071","voter":true},{"id":"n3","raft_addr":"127.0.0.1:7091","voter":true}]},{"id":1,"shard_id":"s1","role":"leader","leader":{"id":"n1","http_addr":"127.0.0.1:7070"},"term":4,"commit_index":20,"applied_index":20,"last_index":20,"lag":0,"members":[{"id":"n1","raft_addr":"127.0.0.1:7071","voter":true},{"id":"n2","raft_addr":"127.0.0.1:7081","voter":true},{"id":"n3","raft_addr":"127.0.0.1:7091","voter":false}]}]}`

func clusterAPI(t *testing.T) *fakeAPI {
	return newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/cluster/status": answer(200, clusterStatusJSON),
		"GET /v1/cluster/map":    answer(200, clusterMapJSON),
	})
}

// TestStatusShowsTheClusterMap: tally status adds the nodes (zone, state, replicas and
// leaderships held), each group's voters and leader, and the moves in progress.
func TestStatusShowsTheClusterMap(t *testing.T) {
	api := clusterAPI(t)
	code, out, errOut := tally(t, "status", "--addr", api.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `node n1
GROUP  SHARD  ROLE      LEADER  LEADER HTTP     TERM  COMMIT  APPLIED  LAG  MEMBERS
0      s0     follower  n3      127.0.0.1:7090  2     10      10       0    n1,n3
1      s1     leader    n1      127.0.0.1:7070  4     20      20       0    n1,n2,n3 (nonvoter)

cluster map at index 57: 3 nodes, 2 groups of 2 replicas, controller leader n1
NODE  ZONE  STATE     REPLICAS  LEADERS  HTTP            RAFT
n1    a     active    2         1        127.0.0.1:7070  127.0.0.1:7071
n2    b     draining  1         0        127.0.0.1:7080  127.0.0.1:7081
n3    -     active    2         1        127.0.0.1:7090  127.0.0.1:7091

GROUP  KEYS                    VOTERS  LEADER
0      fnv1a32(key) mod 2 = 0  n1,n3   n3
1      fnv1a32(key) mod 2 = 1  n1,n2   n1

moves in progress:
  g1: +n3 -n2
`
	if out != want {
		t.Errorf("status printed\n%s\nwant\n%s", out, want)
	}

	// --json: the node's status as it sent it, the map added as "map".
	code, out, errOut = tally(t, "status", "--json", "--addr", api.URL)
	if code != 0 || !strings.HasPrefix(out, clusterStatusJSON[:len(clusterStatusJSON)-1]+`,"map":{"index":57,`) {
		t.Fatalf("status --json: exit %d, printed %q, %s", code, out, errOut)
	}
	var both struct {
		ID  string `json:"id"`
		Map struct {
			Nodes []struct {
				State string `json:"state"`
			} `json:"nodes"`
		} `json:"map"`
	}
	if err := json.Unmarshal([]byte(out), &both); err != nil || both.ID != "n1" || len(both.Map.Nodes) != 3 || both.Map.Nodes[1].State != "draining" {
		t.Errorf("status --json is not the status with the map: %v, %+v", err, both)
	}

	// No moves: said so.
	calm := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/cluster/status": answer(200, clusterStatusJSON),
		"GET /v1/cluster/map":    answer(200, strings.Replace(clusterMapJSON, `,"move":{"group":1,"add":"n3","remove":"n2"}`, "", 1)),
	})
	if _, out, _ := tally(t, "status", "--addr", calm.URL); !strings.HasSuffix(out, "\nmoves in progress: none\n") {
		t.Errorf("status without moves printed\n%s", out)
	}

	// Deployed apps: their names (the map sends no texts).
	withApps := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/cluster/status": answer(200, clusterStatusJSON),
		"GET /v1/cluster/map":    answer(200, strings.Replace(clusterMapJSON, `,"controller":`, `,"apps":[{"name":"Alerts","index":40},{"name":"TradeApp","index":12}],"controller":`, 1)),
	})
	if _, out, _ := tally(t, "status", "--addr", withApps.URL); !strings.Contains(out, "1      fnv1a32(key) mod 2 = 1  n1,n2   n1\n\napps: Alerts, TradeApp\n\nmoves in progress:\n") {
		t.Errorf("status with apps printed\n%s", out)
	}

	// A map the node cannot give (not a 404): the status is printed, the error said, exit 1.
	broken := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/cluster/status": answer(200, clusterStatusJSON),
		"GET /v1/cluster/map":    answer(403, `{"error":"user \"x\" may not GET /v1/cluster/map: that needs the \"read\" permission"}`),
	})
	code, out, errOut = tally(t, "status", "--addr", broken.URL)
	if code != 1 || !strings.HasPrefix(out, "node n1\n") || strings.Contains(out, "cluster map") ||
		!strings.Contains(errOut, "tally status: cluster map: user \"x\" may not GET /v1/cluster/map") {
		t.Errorf("map refused: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestNodesList prints the map's nodes, or the map as it is with --json.
func TestNodesList(t *testing.T) {
	api := clusterAPI(t)
	code, out, errOut := tally(t, "nodes", "list", "--addr", api.URL)
	want := `NODE  ZONE  STATE     REPLICAS  LEADERS  HTTP            RAFT
n1    a     active    2         1        127.0.0.1:7070  127.0.0.1:7071
n2    b     draining  1         0        127.0.0.1:7080  127.0.0.1:7081
n3    -     active    2         1        127.0.0.1:7090  127.0.0.1:7091
`
	if code != 0 || out != want {
		t.Errorf("nodes list: exit %d %s, printed\n%s\nwant\n%s", code, errOut, out, want)
	}
	if code, out, _ := tally(t, "nodes", "ls", "--json", "--addr", api.URL); code != 0 || out != clusterMapJSON+"\n" {
		t.Errorf("nodes ls --json: exit %d, printed %q", code, out)
	}
	old := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/cluster/status": answer(200, statusJSON)})
	if code, _, errOut := tally(t, "nodes", "list", "--addr", old.URL); code != 1 || !strings.Contains(errOut, "without a cluster map") {
		t.Errorf("nodes list on a node without a map: exit %d, %s", code, errOut)
	}
}

// TestNodesDrain posts the drain with the admin's credentials, says how to follow it, and
// shows a refusal as the server words it.
func TestNodesDrain(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /v1/cluster/nodes/n2/drain": answer(202, `{"status":"draining","id":"n2"}`),
		"POST /v1/cluster/nodes/n9/drain": answer(404, `{"error":"no node \"n9\" in the cluster map"}`),
	})
	code, out, errOut := tally(t, "nodes", "drain", "n2", "--addr", api.URL, "--user", "root:pw")
	if code != 0 || out != "n2: draining; follow with tally status\n" {
		t.Fatalf("nodes drain: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	reqs := api.recorded()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/v1/cluster/nodes/n2/drain" {
		t.Fatalf("requests %+v", reqs)
	}
	if u, p, ok := (&http.Request{Header: reqs[0].Header}).BasicAuth(); !ok || u != "root" || p != "pw" {
		t.Errorf("drain sent credentials %q:%q (%v)", u, p, ok)
	}
	code, _, errOut = tally(t, "nodes", "drain", "--addr", api.URL, "n9")
	if code != 1 || errOut != "tally nodes drain: no node \"n9\" in the cluster map (HTTP 404 Not Found)\n" {
		t.Errorf("drain of an unknown node: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"nodes", "drain"}, {"nodes", "drain", "n1", "n2"}, {"nodes"}, {"nodes", "rebalance"}} {
		if code, _, errOut := tally(t, args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestWithField(t *testing.T) {
	for _, c := range []struct{ obj, want string }{
		{`{"id":"n1"}`, `{"id":"n1","map":{"a":1}}`},
		{` {} `, `{"map":{"a":1}}`},
		{`[1]`, `[1]`},
	} {
		if got := string(withField([]byte(c.obj), "map", []byte(`{"a":1}`))); got != c.want {
			t.Errorf("withField(%s) = %s, want %s", c.obj, got, c.want)
		}
	}
}
