package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/raftnode"
)

const testApp = `@app:name('NApp')
@distribution(strategy='partitioned', partitionKey='k')
define stream S (k string, v long, ts long);
define aggregation A
  from S
  select k, sum(v) as total, count() as n
  group by k
  aggregate by ts every sec ... year;
`

// testCluster runs nodes in-process on loopback, sharing one SQLite store.
type testCluster struct {
	t      *testing.T
	dir    string
	groups int
	nodes  map[string]*Node
	cfgs   map[string]Config
	mu     sync.Mutex
	logs   *logTail
	// tweak, when set, changes a node's configuration before its first start.
	tweak func(id string, cfg *Config)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newTestCluster(t *testing.T, groups int) *testCluster {
	c := &testCluster{t: t, dir: t.TempDir(), groups: groups, nodes: map[string]*Node{}, cfgs: map[string]Config{}, logs: &logTail{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.logs.dump(t) // before the closing nodes' lines push the failure's out
		for id, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := n.Close(ctx); err != nil {
				t.Logf("close %s: %v", id, err)
			}
			cancel()
		}
	})
	return c
}

// start opens node id: the first bootstraps the cluster, the others join through it.
func (c *testCluster) start(id, zone string, replicas int) *Node {
	c.t.Helper()
	c.mu.Lock()
	cfg, restarted := c.cfgs[id]
	if !restarted {
		cfg = Config{ID: id, HTTPAddr: freeAddr(c.t), RaftAddr: freeAddr(c.t), DataDir: filepath.Join(c.dir, id), Zone: zone,
			Groups: c.groups, Replicas: replicas, StoreDSN: "sqlite://" + filepath.Join(c.dir, "store.db"),
			DeadNodeTimeout: 3 * time.Second,
			Replica: func(g uint32) raftnode.Config {
				rc := raftnode.DefaultConfig()
				rc.FlushInterval = 200 * time.Millisecond
				return rc
			},
			Logger: slog.New(slog.NewTextHandler(testWriter{c.t, c.logs}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id),
		}
		if len(c.cfgs) == 0 {
			cfg.Bootstrap = true
		} else {
			for _, o := range c.cfgs {
				cfg.Join = append(cfg.Join, "http://"+o.HTTPAddr)
			}
			slices.Sort(cfg.Join)
		}
		if c.tweak != nil {
			c.tweak(id, &cfg)
		}
		c.cfgs[id] = cfg
	}
	c.mu.Unlock()
	n, err := Open(c.t.Context(), cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

func (c *testCluster) stop(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		c.t.Logf("close %s: %v", id, err)
	}
}

func (c *testCluster) client(ids ...string) *client.Client {
	var addrs []string
	for _, id := range ids {
		addrs = append(addrs, "http://"+c.cfgs[id].HTTPAddr)
	}
	cl, err := client.New(addrs, client.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// waitMap waits until node id's map satisfies ok.
func (c *testCluster) waitMap(id string, within time.Duration, what string, ok func(m clustermap.Map) bool) clustermap.Map {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		n := c.nodes[id]
		c.mu.Unlock()
		m := n.Map()
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("within %s, %s's map never showed %s; it is %+v", within, id, what, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settled: every group has r voters and no move is in progress.
func settled(r int) func(m clustermap.Map) bool {
	return func(m clustermap.Map) bool {
		if !m.Initialized() || len(m.Moves()) > 0 {
			return false
		}
		for _, g := range m.Groups {
			if len(g.Voters) != r {
				return false
			}
		}
		return true
	}
}

// testWriter keeps the nodes' logs for a failing test (logTail) and shows them as they come
// with NODE_TEST_LOG set.
type testWriter struct {
	t    *testing.T
	tail *logTail
}

func (w testWriter) Write(b []byte) (int, error) {
	line := strings.TrimRight(string(b), "\n")
	if os.Getenv("NODE_TEST_LOG") != "" {
		w.t.Log(line)
	}
	w.tail.add(line)
	return len(b), nil
}

// logTail holds the last lines the nodes logged, printed when the test failed.
type logTail struct {
	mu    sync.Mutex
	lines []string
	next  int
}

const logTailLines = 2000

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < logTailLines {
		l.lines = append(l.lines, line)
		return
	}
	l.lines[l.next] = line
	l.next = (l.next + 1) % logTailLines
}

// logged reports whether a line the nodes logged holds s.
func (l *logTail) logged(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func (l *logTail) dump(t *testing.T) {
	if !t.Failed() || os.Getenv("NODE_TEST_LOG") != "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for i := range l.lines {
		b.WriteString(l.lines[(l.next+i)%len(l.lines)])
		b.WriteByte('\n')
	}
	t.Logf("the nodes' last %d log lines:\n%s", len(l.lines), b.String())
}

// hostedCounts is how many replicas each node has open.
func (c *testCluster) hostedCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for id, n := range c.nodes {
		for _, s := range n.slots {
			if s.local() != nil {
				out[id]++
			}
		}
	}
	return out
}

// TestNodes_PlaceJoinDrain: four nodes, four groups of three replicas. Every group ends with
// three voters on three distinct nodes and every node holds three replicas (opened only
// there); events sent to any node are counted once; draining a node moves its replicas off
// while producers write, and it leaves the map; every acknowledged event is counted once.
func TestNodes_PlaceJoinDrain(t *testing.T) {
	c := newTestCluster(t, 4)
	c.start("n1", "", 3)
	c.waitMap("n1", 10*time.Second, "the cluster created", func(m clustermap.Map) bool { return m.Initialized() })
	for _, id := range []string{"n2", "n3", "n4"} {
		c.start(id, "", 3)
	}
	// Settled with every node a voter of 3 groups (the last joiner may still be unplaced
	// when the first three settle).
	m := c.waitMap("n1", 60*time.Second, "every group on 3 nodes and every node a voter of 3", func(m clustermap.Map) bool {
		if !settled(3)(m) {
			return false
		}
		for _, id := range []string{"n1", "n2", "n3", "n4"} {
			if m.ReplicasOn(id) != 3 {
				return false
			}
		}
		return true
	})
	for _, g := range m.Groups {
		if len(slices.Compact(slices.Sorted(slices.Values(g.Voters)))) != 3 {
			t.Errorf("group %d voters %v: not 3 distinct nodes", g.ID, g.Voters)
		}
	}
	waitFor(t, 20*time.Second, "every node to open exactly the replicas the map places on it", func() bool {
		h := c.hostedCounts()
		return h["n1"] == 3 && h["n2"] == 3 && h["n3"] == 3 && h["n4"] == 3
	})

	cl := c.client("n1", "n2", "n3", "n4")
	ctx := t.Context()
	if _, err := cl.Deploy(ctx, testApp); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	// The deploy answers once the groups' leaders applied it; followers apply it a moment later.
	waitFor(t, 10*time.Second, "every node to know the app", func() bool {
		for _, id := range []string{"n1", "n2", "n3", "n4"} {
			apps, err := c.client(id).Apps(ctx)
			if err != nil || len(apps) != 1 {
				return false
			}
		}
		return true
	})
	// Producers write through every node while n2 drains.
	const keys, rounds = 40, 30
	var sent sync.WaitGroup
	errs := make(chan error, 4)
	ts := time.Now().UnixMilli()
	write := func(via string, from, to int) {
		defer sent.Done()
		p, err := c.client(via).Publisher("S", client.PublisherOptions{MaxBatch: 50, Linger: 5 * time.Millisecond})
		if err != nil {
			errs <- err
			return
		}
		for r := from; r < to; r++ {
			for k := range keys {
				if err := p.Add(ctx, map[string]any{"k": fmt.Sprintf("key-%d", k), "v": 1, "ts": ts}); err != nil {
					errs <- fmt.Errorf("via %s: %w", via, err)
					return
				}
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := p.Close(cctx); err != nil {
			errs <- fmt.Errorf("via %s: close: %w", via, err)
		}
	}
	sent.Add(2)
	go write("n3", 0, rounds)
	go write("n4", 0, rounds)

	resp, err := http.Post("http://"+c.cfgs["n3"].HTTPAddr+"/v1/cluster/nodes/n2/drain", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("drain n2 through n3: %d %s", resp.StatusCode, body)
	}
	c.waitMap("n1", 60*time.Second, "n2 gone and every group on 3 nodes", func(m clustermap.Map) bool {
		_, there := m.Node("n2")
		return !there && settled(3)(m)
	})
	sent.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "n2 to close its replicas and delete their data", func() bool {
		if c.hostedCounts()["n2"] != 0 {
			return false
		}
		matches, _ := filepath.Glob(filepath.Join(c.cfgs["n2"].DataDir, "group-*"))
		return len(matches) == 0
	})
	// The controller's leaders timed the moves they carried out.
	moves := 0.0
	for id, cfg := range c.cfgs {
		if id == "n2" {
			continue
		}
		resp, err := http.Get("http://" + cfg.HTTPAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, `tally_move_seconds_count{result="finished"} `); ok {
				f, _ := strconv.ParseFloat(v, 64)
				moves += f
			}
		}
	}
	if moves < 3 {
		t.Errorf("tally_move_seconds counted %v finished moves on the nodes, want at least the drain's 3", moves)
	}
	// Every acknowledged event once: 2 producers × rounds per key.
	// A leadership that just moved (leader balance) can answer 503 once: retry as a client would.
	var res *client.Result
	waitFor(t, 10*time.Second, "a query to answer", func() bool {
		var err error
		res, err = c.client("n1", "n3").Query(ctx, "NApp", "from A within 0L, 9999999999999L per 'years' select k, total, n", client.QueryOptions{})
		if err != nil {
			t.Logf("query: %v", err)
		}
		return err == nil
	})
	if len(res.Records) != keys {
		t.Fatalf("%d keys, want %d: %v", len(res.Records), keys, res.Records)
	}
	for _, r := range res.Records {
		if fmt.Sprint(r[1]) != fmt.Sprint(2*rounds) || fmt.Sprint(r[2]) != fmt.Sprint(2*rounds) {
			t.Errorf("key %v: total %v, n %v, want %d each", r[0], r[1], r[2], 2*rounds)
		}
	}
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
