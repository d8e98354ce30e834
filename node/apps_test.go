package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
)

const testApp2 = `@app:name('NApp2')
@distribution(strategy='partitioned', partitionKey='k')
define stream S2 (k string, v long, ts long);
define aggregation A2
  from S2
  select k, sum(v) as total, count() as n
  group by k
  aggregate by ts every sec ... year;
`

// placedOnce: every group has one voter, no move is in progress, the three nodes are in
// the map and none holds more than one replica (placement's balance: nothing more moves).
func placedOnce(m clustermap.Map) bool {
	if len(m.Nodes) != 3 || len(m.Moves()) > 0 {
		return false
	}
	for _, n := range m.Nodes {
		if m.ReplicasOn(n.ID) > 1 {
			return false
		}
	}
	for _, g := range m.Groups {
		if len(g.Voters) != 1 {
			return false
		}
	}
	return true
}

// idleNode is a node of m that holds no replica.
func idleNode(t *testing.T, m clustermap.Map) string {
	t.Helper()
	for _, n := range m.Nodes {
		if m.ReplicasOn(n.ID) == 0 {
			return n.ID
		}
	}
	t.Fatalf("every node holds a replica: %+v", m)
	return ""
}

// postText sends a request with a text body to node id and returns the status and body.
func (c *testCluster) postText(id, method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, "http://"+c.cfgs[id].HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// groupHasApp reports whether node id's replica of group g runs app (false without one).
func (c *testCluster) groupHasApp(id string, g uint32, app string) (has, hosted bool) {
	c.mu.Lock()
	n := c.nodes[id]
	c.mu.Unlock()
	r := n.slots[g].local()
	if r == nil {
		return false, false
	}
	_ = r.Read(c.t.Context(), raftnode.Stale, 0, func(e fsm.View) { _, has = e.App(app) })
	return has, true
}

// ingestKeys sends one event per key to stream through node id, retrying a 503 (a leader
// just elected) with the same producer and seq.
func (c *testCluster) ingestKeys(id, stream string, keys int, seq uint64) {
	c.t.Helper()
	events := make([]any, keys)
	for k := range keys {
		events[k] = map[string]any{"k": fmt.Sprintf("key-%d", k), "v": 2, "ts": 1_700_000_000_000}
	}
	waitFor(c.t, 10*time.Second, "ingest into "+stream+" through "+id, func() bool {
		_, err := c.client(id).Ingest(c.t.Context(), stream, events, client.IngestOptions{ProducerID: "p-" + stream, Seq: seq})
		if err != nil {
			c.t.Logf("ingest into %s through %s: %v", stream, id, err)
		}
		return err == nil
	})
}

// checkTotals queries app's aggregation through node id: every key once, total 2.
func (c *testCluster) checkTotals(id, app, agg string, keys int) {
	c.t.Helper()
	var res *client.Result
	waitFor(c.t, 10*time.Second, "a query of "+agg+" through "+id, func() bool {
		var err error
		res, err = c.client(id).Query(c.t.Context(), app, "from "+agg+" within 0L, 9999999999999L per 'years' select k, total, n", client.QueryOptions{})
		return err == nil && len(res.Records) == keys
	})
	for _, r := range res.Records {
		if fmt.Sprint(r[1]) != "2" || fmt.Sprint(r[2]) != "1" {
			c.t.Errorf("%s key %v: total %v, n %v; want 2 and 1", agg, r[0], r[1], r[2])
		}
	}
}

// waitLeaders waits until node id knows every group's leader.
func (c *testCluster) waitLeaders(id string) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, id+" to know every group's leader", func() bool {
		st, err := c.client(id).Status(c.t.Context())
		if err != nil {
			return false
		}
		for _, g := range st.Groups {
			if g.Leader == nil || g.Leader.ID == "" {
				return false
			}
		}
		return true
	})
}

// TestApps_NodeWithoutReplica: a node that hosts no replica of any group decodes and routes
// ingest for an app deployed before it joined and for one deployed through it after, lists
// both apps, and after a restart rebuilds its catalog from the cluster map alone.
func TestApps_NodeWithoutReplica(t *testing.T) {
	c := newTestCluster(t, 2)
	c.start("n1", "", 1)
	c.waitMap("n1", 10*time.Second, "the cluster created", func(m clustermap.Map) bool { return m.Initialized() })
	c.waitLeaders("n1")
	if code, body := c.postText("n1", "POST", "/v1/apps", testApp); code != http.StatusCreated {
		t.Fatalf("deploy before the join: %d %s", code, body)
	}
	c.start("n2", "", 1)
	c.start("n3", "", 1)
	m := c.waitMap("n1", 30*time.Second, "both groups placed on one node each", placedOnce)
	idle := idleNode(t, m)
	if _, ok := m.App("NApp"); !ok {
		t.Fatalf("the deployed app is not in the map: %+v", m.Apps)
	}
	waitFor(t, 10*time.Second, idle+"'s catalog to know stream S", func() bool {
		c.mu.Lock()
		n := c.nodes[idle]
		c.mu.Unlock()
		d, ok := n.StreamDef(t.Context(), "S")
		return ok && len(d.Attributes) == 3
	})

	const keys = 20
	c.ingestKeys(idle, "S", keys, 1)
	c.checkTotals(idle, "NApp", "A", keys)

	// Deployed through the idle node: it records the app through the controller's leader.
	code, body := c.postText(idle, "POST", "/v1/apps", testApp2)
	if code != http.StatusCreated || !strings.Contains(body, `"groups"`) {
		t.Fatalf("deploy through %s: %d %s", idle, code, body)
	}
	var answer struct {
		Groups []json.RawMessage `json:"groups"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil || len(answer.Groups) != 2 {
		t.Errorf("deploy answer %s: want both groups", body)
	}
	// Answered 201: the controller's leader recorded it; every node follows within a moment.
	c.waitMap(idle, 5*time.Second, "NApp2 in the map", func(m clustermap.Map) bool { _, ok := m.App("NApp2"); return ok })
	waitFor(t, 10*time.Second, idle+"'s catalog to know stream S2", func() bool {
		c.mu.Lock()
		n := c.nodes[idle]
		c.mu.Unlock()
		_, ok := n.StreamDef(t.Context(), "S2")
		return ok
	})
	c.ingestKeys(idle, "S2", keys, 1)
	c.checkTotals(idle, "NApp2", "A2", keys)
	apps, err := c.client(idle).Apps(t.Context())
	if err != nil || len(apps) != 2 || apps[0].Name != "NApp" || apps[1].Name != "NApp2" || !slices.Equal(apps[1].Streams, []string{"S2"}) {
		t.Errorf("apps listed by %s: %+v, %v", idle, apps, err)
	}

	// Restarted, the node knows the apps again from the map alone (it still hosts nothing).
	c.stop(idle)
	c.start(idle, "", 1)
	waitFor(t, 15*time.Second, "the restarted "+idle+" to know S and S2 again", func() bool {
		c.mu.Lock()
		n := c.nodes[idle]
		c.mu.Unlock()
		_, ok1 := n.StreamDef(t.Context(), "S")
		_, ok2 := n.StreamDef(t.Context(), "S2")
		return ok1 && ok2
	})
	if h := c.hostedCounts(); h[idle] != 0 {
		t.Fatalf("%s opened %d replicas; the test needs a node without any", idle, h[idle])
	}
	c.ingestKeys(idle, "S2", keys, 2)
	var res *client.Result
	waitFor(t, 10*time.Second, "the second round counted", func() bool {
		res, err = c.client(idle).Query(t.Context(), "NApp2", "from A2 within 0L, 9999999999999L per 'years' select k, total, n", client.QueryOptions{})
		return err == nil && len(res.Records) == keys && fmt.Sprint(res.Records[0][2]) == "2"
	})
}

// TestApps_DeployConvergesAndUndeploy: a deploy while one group's leader is down is
// recorded in the map (answered 503 for that group, as before) and reaches that group once
// it is back; a refused app changes nothing; an undeploy leaves the map and every group.
func TestApps_DeployConvergesAndUndeploy(t *testing.T) {
	c := newTestCluster(t, 2)
	c.start("n1", "", 1)
	c.waitMap("n1", 10*time.Second, "the cluster created", func(m clustermap.Map) bool { return m.Initialized() })
	c.start("n2", "", 1)
	c.start("n3", "", 1)
	m := c.waitMap("n1", 30*time.Second, "both groups placed on one node each", placedOnce)
	ctlLeader, _ := c.nodes["n1"].ControllerLeader()
	var down string
	var downGroup uint32
	for _, g := range m.Groups {
		if g.Voters[0] != ctlLeader {
			down, downGroup = g.Voters[0], g.ID
		}
	}
	if down == "" {
		t.Fatalf("the controller's leader %s holds every group: %+v", ctlLeader, m.Groups)
	}
	via := "n1"
	for _, id := range []string{"n1", "n2", "n3"} {
		if id != down {
			via = id
		}
	}
	c.waitLeaders(via)

	// A refused app is refused as the groups would refuse it, and is not recorded.
	bad := strings.Replace(testApp2, "NApp2", "Bad", 1) + "from S2 select k, nope as x insert into Out;\n"
	if code, body := c.postText(via, "POST", "/v1/apps", bad); code != http.StatusBadRequest || !strings.Contains(body, "nope") {
		t.Errorf("a bad app: %d %s; want 400 naming the attribute", code, body)
	}
	if code, body := c.postText(via, "POST", "/v1/apps", testApp); code != http.StatusCreated {
		t.Fatalf("deploy NApp: %d %s", code, body)
	}
	conflict := strings.Replace(testApp2, "NApp2", "Other", 1)
	conflict = strings.Replace(conflict, "define stream S2", "define stream S", 1)
	conflict = strings.ReplaceAll(conflict, "from S2", "from S")
	if code, body := c.postText(via, "POST", "/v1/apps", conflict); code != http.StatusBadRequest || !strings.Contains(body, "NApp") {
		t.Errorf("an app redefining NApp's stream: %d %s; want 400 naming NApp", code, body)
	}

	c.stop(down)
	code, body := c.postText(via, "POST", "/v1/apps", testApp2)
	if code == http.StatusCreated {
		t.Fatalf("deploy with group %d's only replica down answered 201: %s", downGroup, body)
	}
	m = c.waitMap(via, 5*time.Second, "NApp2 recorded", func(m clustermap.Map) bool { _, ok := m.App("NApp2"); return ok })
	if _, ok := m.App("Bad"); ok {
		t.Error("the refused app is in the map")
	}
	if _, ok := m.App("Other"); ok {
		t.Error("the conflicting app is in the map")
	}
	c.start(down, "", 1)
	waitFor(t, 15*time.Second, fmt.Sprintf("group %d on %s to run NApp2", downGroup, down), func() bool {
		has, _ := c.groupHasApp(down, downGroup, "NApp2")
		return has
	})
	c.ingestKeys(via, "S2", 10, 1)
	c.checkTotals(via, "NApp2", "A2", 10)

	if _, err := c.client(via).Undeploy(t.Context(), "NApp2"); err != nil {
		t.Fatalf("undeploy: %v", err)
	}
	c.waitMap(down, 5*time.Second, "NApp2 gone from the map", func(m clustermap.Map) bool {
		_, ok := m.App("NApp2")
		_, napp := m.App("NApp")
		return !ok && napp
	})
	waitFor(t, 10*time.Second, "NApp2 gone from every group, NApp on all", func() bool {
		for _, id := range []string{"n1", "n2", "n3"} {
			for g := range uint32(2) {
				has, hosted := c.groupHasApp(id, g, "NApp2")
				keep, _ := c.groupHasApp(id, g, "NApp")
				if hosted && (has || !keep) {
					return false
				}
			}
		}
		return true
	})
	// The map's JSON names the apps without their texts.
	resp, err := http.Get("http://" + c.cfgs[via].HTTPAddr + "/v1/cluster/map")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte(`"apps":[{"name":"NApp","index":`)) || bytes.Contains(b, []byte("define stream")) {
		t.Errorf("GET /v1/cluster/map: %s", b)
	}
}

// TestApps_BootstrapFiles: the --app files of the bootstrapping node are recorded in the map
// and reach every group; restarted with a changed file, the node leaves the deployed app
// as it is (its state would be dropped).
func TestApps_BootstrapFiles(t *testing.T) {
	c := newTestCluster(t, 2)
	file := filepath.Join(t.TempDir(), "app.siddhi")
	if err := os.WriteFile(file, []byte(testApp), 0o600); err != nil {
		t.Fatal(err)
	}
	c.tweak = func(id string, cfg *Config) { cfg.Apps = []string{file} }
	c.start("n1", "", 1)
	c.waitMap("n1", 10*time.Second, "the app recorded", func(m clustermap.Map) bool { _, ok := m.App("NApp"); return ok })
	waitFor(t, 10*time.Second, "both groups to run NApp", func() bool {
		a, _ := c.groupHasApp("n1", 0, "NApp")
		b, _ := c.groupHasApp("n1", 1, "NApp")
		return a && b
	})
	m := c.nodes["n1"].Map()
	first, _ := m.App("NApp")

	if err := os.WriteFile(file, []byte(strings.Replace(testApp, "v long", "v long, extra string", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	c.stop("n1")
	c.start("n1", "", 1)
	waitFor(t, 15*time.Second, "the restarted node to leave the deployed app", func() bool {
		return c.logs.logged("app already deployed; leaving it")
	})
	m = c.nodes["n1"].Map()
	if again, ok := m.App("NApp"); !ok || again.Index != first.Index || again.Text != testApp {
		t.Errorf("a restart with a changed --app file changed the app: %+v, was %+v", again, first)
	}
}
