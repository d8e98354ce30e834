package systest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// clusterMap is the part of GET /v1/cluster/map the scale test reads.
type clusterMap struct {
	Nodes []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"nodes"`
	Groups []struct {
		ID     int      `json:"id"`
		Voters []string `json:"voters"`
		Move   *struct {
			Add    string `json:"add"`
			Remove string `json:"remove"`
		} `json:"move"`
	} `json:"groups"`
}

// readMap reads n1's map into a fresh value (decoding into the old one would keep moves the
// new answer leaves out).
func (c *cluster) readMap(m *clusterMap) bool {
	var fresh clusterMap
	if c.getJSON(c.nodes[0], "/v1/cluster/map", &fresh) != nil {
		return false
	}
	*m = fresh
	return true
}

// perNode counts each node's replicas in the map (voters, and the new replica of a move).
func (m clusterMap) perNode() map[string]int {
	out := map[string]int{}
	for _, n := range m.Nodes {
		out[n.ID] = 0
	}
	for _, g := range m.Groups {
		for _, v := range g.Voters {
			out[v]++
		}
	}
	return out
}

func (m clusterMap) settled(replicas int) bool {
	for _, g := range m.Groups {
		if g.Move != nil || len(g.Voters) != replicas {
			return false
		}
	}
	return len(m.Groups) > 0
}

// appliedEvents sums nd's tally_fsm_applied_events_total over its groups.
func (c *cluster) appliedEvents(nd *node) (int64, error) {
	resp, err := c.http.Get(c.url(nd, "/metrics"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum int64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "tally_fsm_applied_events_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += int64(v)
	}
	return sum, sc.Err()
}

// TestScale_SixNodesJoinDrain: six nodes with --groups 6 --replicas 3 place every group on
// exactly three nodes and three replicas on every node; under load each node applies about
// half of the acknowledged events (its three groups of six), not all of them. A seventh node
// joins while producers write with producer seqs and within 120 s holds at least 2 replicas,
// every node 2 or 3; n2 is drained and within 120 s no group lists it. Every acknowledged
// event is counted exactly once.
func TestScale_SixNodesJoinDrain(t *testing.T) {
	const groups, replicas = 6, 3
	c := newGroupCluster(t, 6, groups, "--replicas", strconv.Itoa(replicas))
	var m clusterMap
	defer func() {
		if t.Failed() {
			for _, nd := range c.nodes {
				var raw json.RawMessage
				err := c.getJSON(nd, "/v1/cluster/map", &raw)
				t.Logf("%s's map: %s %v", nd.id, raw, err)
			}
		}
	}()
	c.eventually(60*time.Second, "every group on 3 nodes and every node holding 3", func() bool {
		if !c.readMap(&m) || !m.settled(replicas) {
			return false
		}
		for _, n := range m.perNode() {
			if n != 3 {
				return false
			}
		}
		return true
	})
	for _, g := range m.Groups {
		if len(slices.Compact(slices.Sorted(slices.Values(g.Voters)))) != replicas {
			t.Errorf("group %d: voters %v are not 3 distinct nodes", g.ID, g.Voters)
		}
	}
	if code, body := c.deploy(c.nodes[0], pApp); code != http.StatusCreated {
		t.Fatalf("deploy: %d %s", code, body)
	}

	// Producers write through every node, each with its own producer ID and seqs.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var acked, added atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var addrs []string
	for _, nd := range c.nodes {
		addrs = append(addrs, "http://"+nd.httpAddr)
	}
	const symbols = 60
	for p := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := client.New(slices.Concat(addrs[p*2:], addrs[:p*2]), client.Options{})
			if err != nil {
				errs <- err
				return
			}
			pub, err := cl.Publisher("PTrades", client.PublisherOptions{ProducerID: fmt.Sprintf("scale-%d", p), MaxBatch: 200, Linger: 5 * time.Millisecond, RetryFor: 60 * time.Second})
			if err != nil {
				errs <- err
				return
			}
			for i := 0; ctx.Err() == nil; i++ {
				ev := map[string]any{"symbol": fmt.Sprintf("s%d", i%symbols), "price": 1.0, "quantity": 1, "timestamp": time.Now().UnixMilli()}
				if err := pub.Add(ctx, ev); err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("producer %d: %w", p, err)
					}
					break
				}
				added.Add(1)
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer ccancel()
			if err := pub.Close(cctx); err != nil {
				errs <- fmt.Errorf("producer %d: close: %w", p, err)
			}
			st := pub.Stats() // a duplicate batch was applied by an earlier try whose answer was lost
			acked.Add(int64(st.Events + st.Duplicates))
		}()
	}
	c.eventually(30*time.Second, "the producers under way", func() bool { return added.Load() >= 3000 })

	// A seventh node joins while they write.
	n7 := &node{id: "n7", httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
	n7.dataDir, n7.logPath = c.dir+"/n7", c.dir+"/n7.log"
	n7.args = []string{"serve", "--id", "n7", "--data-dir", n7.dataDir, "--http-addr", n7.httpAddr, "--raft-addr", n7.raftAddr,
		"--join", "http://" + c.nodes[0].httpAddr}
	c.nodes = append(c.nodes, n7)
	joined := time.Now()
	c.start(n7)
	c.eventually(120*time.Second, "n7 holding at least 2 replicas and every node 2 or 3", func() bool {
		if !c.readMap(&m) || !m.settled(replicas) {
			return false
		}
		per := m.perNode()
		for _, n := range per {
			if n < 2 || n > 3 {
				return false
			}
		}
		return per["n7"] >= 2
	})
	t.Logf("n7 joined and placement settled in %s: %v", time.Since(joined).Round(100*time.Millisecond), m.perNode())

	// Drain n2 through another node.
	drained := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url(c.nodes[2], "/v1/cluster/nodes/n2/drain"), nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("drain n2: %d", resp.StatusCode)
	}
	c.eventually(120*time.Second, "no group listing n2 and n2 gone from the map", func() bool {
		if !c.readMap(&m) || !m.settled(replicas) {
			return false
		}
		_, there := m.perNode()["n2"]
		return !there
	})
	t.Logf("n2 drained in %s: %v", time.Since(drained).Round(100*time.Millisecond), m.perNode())

	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := acked.Load()
	if total == 0 {
		t.Fatal("no event acknowledged")
	}
	// Every acknowledged event once.
	var got map[string][2]int64
	c.eventually(20*time.Second, "the totals", func() bool {
		var err error
		got, err = c.pTotals(c.nodes[0], "linearizable", nil)
		return err == nil
	})
	var sum int64
	for _, v := range got {
		sum += v[1]
	}
	if sum != total {
		t.Errorf("counted %d events, acknowledged %d", sum, total)
	}
	// Each of the six original nodes applied about half of the events (its 3 groups of 6),
	// n2 and n7 less (they held replicas only part of the time).
	for _, nd := range c.nodes {
		if nd.id == "n2" || nd.id == "n7" {
			continue
		}
		applied, err := c.appliedEvents(nd)
		if err != nil {
			t.Fatal(err)
		}
		share := float64(applied) / float64(total)
		t.Logf("%s applied %d of %d acknowledged events (%.2f)", nd.id, applied, total, share)
		if share < 0.2 || share > 0.8 {
			t.Errorf("%s applied %.2f of the acknowledged events, want about half (3 of 6 groups)", nd.id, share)
		}
	}
}
