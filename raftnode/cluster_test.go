package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/siddhiql"
)

// testApp has one stream and an arrival-time aggregation with a sum and a count per key.
const testApp = `@app:name('T')
define stream S (k string, v long);
define aggregation A from S select k, sum(v) as total, count() as n group by k aggregate every sec ... year;
`

// totalsQuery reads every year row of A; totals sums rows per key, so a run that crosses a
// year boundary still adds up.
const totalsQuery = `from A within 0L, 9999999999999L per "years" select k, total, n`

// testTimeout bounds every wait of a test on a healthy cluster.
const testTimeout = 10 * time.Second

// testLogger sends slog records to t.Log until the test's cleanup runs, so a failing test
// shows what raft did and late goroutines never call t.Log after the test completed.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// testConfig has fast but realistic timeouts: stable under -race on two cores.
func testConfig(t testing.TB, id, dir string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.DataDir = dir
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.CommitTimeout = 10 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	cfg.Logger = testLogger(t)
	return cfg
}

// cluster is an in-process group: Nodes over raft's in-memory transport, each with real
// bolt stores and file snapshots in its own temporary directory.
type cluster struct {
	t *testing.T

	mu     sync.Mutex // guards the slices: a restart replaces a node
	nodes  []*Node
	trans  []*raft.InmemTransport
	addrs  []raft.ServerAddress
	cfgs   []Config
	closed []bool

	// lagging: nodes (by ID) whose probe answers say they applied nothing yet.
	lagging map[string]bool
	probes  atomic.Int64 // probe answers given
}

// newCluster starts n nodes: node 0 bootstraps, the others join through the leader. opts
// adjust every node's Config.
func newCluster(t *testing.T, n int, opts ...func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t}
	t.Cleanup(c.shutdown)
	c.add(true, opts...)
	leader := c.waitLeader(testTimeout)
	for i := 1; i < n; i++ {
		c.join(leader, c.add(false, opts...))
	}
	c.waitMembers(n)
	c.waitLeader(testTimeout)
	return c
}

// add opens one more node, connected to every other transport, and returns its position.
func (c *cluster) add(bootstrap bool, opts ...func(*Config)) int {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	id := fmt.Sprintf("n%d", i)
	addr, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	cfg := testConfig(c.t, id, filepath.Join(c.t.TempDir(), id))
	cfg.Bootstrap = bootstrap
	cfg.Probe = c.probe
	for _, o := range opts {
		o(&cfg)
	}
	for j, other := range c.trans {
		if !c.closed[j] {
			tr.Connect(c.addrs[j], other)
			other.Connect(addr, tr)
		}
	}
	c.nodes = append(c.nodes, nil)
	c.trans = append(c.trans, tr)
	c.addrs = append(c.addrs, addr)
	c.cfgs = append(c.cfgs, cfg)
	c.closed = append(c.closed, false)
	c.mu.Unlock()

	nd, err := Open(cfg, tr)
	if err != nil {
		c.t.Fatalf("open %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[i] = nd
	c.mu.Unlock()
	return i
}

// probe answers for the in-memory addresses what a node's meta channel answers: its ID
// and applied index. An address of no open node does not answer.
func (c *cluster) probe(ctx context.Context, addr string, _ uint32) (Meta, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.addrs {
		if string(a) == addr && !c.closed[i] && c.nodes[i] != nil {
			applied := c.nodes[i].LogApplied()
			if c.lagging[c.cfgs[i].ID] {
				applied = 0
			}
			c.probes.Add(1)
			return Meta{ID: c.cfgs[i].ID, RaftAddr: addr, Applied: &applied}, nil
		}
	}
	return Meta{}, fmt.Errorf("nothing answers at %s", addr)
}

// join adds node i through leader.
func (c *cluster) join(leader *Node, i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), testTimeout)
	defer cancel()
	if err := leader.Join(ctx, c.cfgs[i].ID, string(c.addrs[i])); err != nil {
		c.t.Fatalf("join n%d: %v", i, err)
	}
}

func (c *cluster) node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// live returns the nodes that are open.
func (c *cluster) live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for i, n := range c.nodes {
		if n != nil && !c.closed[i] {
			out = append(out, n)
		}
	}
	return out
}

// others returns the live nodes except skip.
func (c *cluster) others(skip *Node) []*Node {
	var out []*Node
	for _, n := range c.live() {
		if n != skip {
			out = append(out, n)
		}
	}
	return out
}

// waitLeader waits until exactly one live node leads and returns it.
func (c *cluster) waitLeader(timeout time.Duration) *Node {
	c.t.Helper()
	return waitLeaderOf(c.t, c.live, timeout)
}

// waitLeaderOf waits until exactly one of nodes() leads and every one of them knows it.
func waitLeaderOf(t testing.TB, nodes func() []*Node, timeout time.Duration) *Node {
	t.Helper()
	var leader *Node
	eventually(t, timeout, func() bool {
		leader = agreedLeader(nodes())
		return leader != nil
	}, "exactly one leader")
	return leader
}

// waitMembers waits until every live node sees n voters.
func (c *cluster) waitMembers(n int) {
	c.t.Helper()
	eventually(c.t, testTimeout, func() bool {
		for _, nd := range c.live() {
			voters := 0
			for _, m := range nd.Status().Members {
				if m.Voter {
					voters++
				}
			}
			if voters != n {
				return false
			}
		}
		return true
	}, "every node sees %d voters", n)
}

// stop closes node i (a leader hands over first) and marks it closed.
func (c *cluster) stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	nd := c.nodes[i]
	c.closed[i] = true
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := nd.Close(ctx); err != nil {
		c.t.Errorf("close n%d: %v", i, err)
	}
}

// restart reopens closed node i on its data directory, over a new in-memory transport with
// the same address that every live node is connected to again.
func (c *cluster) restart(i int) *Node {
	c.t.Helper()
	c.mu.Lock()
	if !c.closed[i] {
		c.mu.Unlock()
		c.t.Fatalf("restart n%d: still open", i)
	}
	addr, tr := raft.NewInmemTransport(c.addrs[i])
	for j, other := range c.trans {
		if j != i && !c.closed[j] {
			tr.Connect(c.addrs[j], other)
			other.Connect(addr, tr)
		}
	}
	c.trans[i] = tr
	cfg := c.cfgs[i]
	cfg.Bootstrap = false
	c.mu.Unlock()
	nd, err := Open(cfg, tr)
	if err != nil {
		c.t.Fatalf("reopen n%d: %v", i, err)
	}
	c.mu.Lock()
	c.nodes[i], c.closed[i] = nd, false
	c.mu.Unlock()
	return nd
}

// isolate cuts node i off from every other node, both ways.
func (c *cluster) isolate(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.addrs[i])
		}
	}
}

// heal reconnects every pair of open nodes.
func (c *cluster) heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j && !c.closed[i] && !c.closed[j] {
				a.Connect(c.addrs[j], b)
			}
		}
	}
}

// indexOf is the position of nd in the cluster.
func (c *cluster) indexOf(nd *Node) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n == nd {
			return i
		}
	}
	c.t.Fatalf("node %s is not in the cluster", nd.ID())
	return -1
}

// shutdown cuts every link first, so that no Close waits for a leadership transfer to a
// node that is going away, then closes every open node concurrently.
func (c *cluster) shutdown() {
	c.mu.Lock()
	for _, tr := range c.trans {
		tr.DisconnectAll()
	}
	var open []*Node
	for i, n := range c.nodes {
		if n != nil && !c.closed[i] {
			open = append(open, n)
			c.closed[i] = true
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range open {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := n.Close(ctx); err != nil {
				c.t.Errorf("close %s: %v", n.ID(), err)
			}
		})
	}
	wg.Wait()
}

// deploy deploys testApp through the leader and waits until every live node applied it.
func (c *cluster) deploy() uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), testTimeout)
	defer cancel()
	name, idx, err := deployRetrying(ctx, func() *Node { return c.waitLeader(testTimeout) }, testApp)
	if err != nil || name != "T" {
		c.t.Fatalf("deploy: name %q, err %v", name, err)
	}
	c.waitApplied(idx)
	return idx
}

// deployRetrying deploys text on the current leader, again on the next one when leadership
// moved meanwhile (a loaded machine can miss a 200 ms lease): deploying the same text twice
// changes nothing.
func deployRetrying(ctx context.Context, leader func() *Node, text string) (string, uint64, error) {
	for {
		name, idx, err := leader().Deploy(ctx, text)
		if err == nil || ctx.Err() != nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrUnknownOutcome)) {
			return name, idx, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitApplied waits until every live node applied index.
func (c *cluster) waitApplied(index uint64) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), testTimeout)
	defer cancel()
	for _, n := range c.live() {
		if err := n.WaitApplied(ctx, index); err != nil {
			c.t.Fatalf("%s: %v", n.ID(), err)
		}
	}
}

// waitConverged waits until every live node holds byte-identical FSM state (which includes
// the applied index) and returns that index.
func (c *cluster) waitConverged(timeout time.Duration) uint64 {
	c.t.Helper()
	var idx uint64
	eventually(c.t, timeout, func() bool {
		ns := c.live()
		first, err := ns[0].FSM().State()
		if err != nil {
			c.t.Fatalf("%s state: %v", ns[0].ID(), err)
		}
		for _, n := range ns[1:] {
			s, err := n.FSM().State()
			if err != nil {
				c.t.Fatalf("%s state: %v", n.ID(), err)
			}
			if string(s) != string(first) {
				return false
			}
		}
		idx = ns[0].FSM().AppliedIndex()
		for _, n := range ns[1:] {
			if n.FSM().AppliedIndex() != idx {
				return false
			}
		}
		return true
	}, "replicas converge to identical state")
	return idx
}

// eventually polls cond every 10ms until it holds or timeout passes, then fails the test.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+format, append([]any{timeout}, args...)...)
		}
		<-tick.C
	}
}

func row(k string, v int64) expr.Row { return expr.Row{expr.String(k), expr.Long(v)} }

func part(producer string, seq uint64, rows ...expr.Row) fsm.Part {
	return fsm.Part{Stream: "S", ProducerID: producer, Seq: seq, Events: rows}
}

// ingest sends one part of rows to stream S on node and fails the test unless it applied.
func ingest(t testing.TB, node *Node, producer string, seq uint64, rows ...expr.Row) *IngestResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	res, err := node.Ingest(ctx, []fsm.Part{part(producer, seq, rows...)})
	if err != nil {
		t.Fatalf("ingest on %s (producer %q seq %d): %v", node.ID(), producer, seq, err)
	}
	if len(res.Parts) != 1 || res.Parts[0].Err != nil {
		t.Fatalf("ingest on %s (producer %q seq %d): %+v", node.ID(), producer, seq, res.Parts)
	}
	return res
}

// keyAgg is one key's aggregate: sum(v) and count().
type keyAgg struct{ total, n int64 }

// totals reads aggregation A on node at the given consistency, summed per key.
func totals(t testing.TB, node *Node, c Consistency, minIndex uint64) map[string]keyAgg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	out, err := tryTotals(ctx, node, c, minIndex)
	if err != nil {
		t.Fatalf("read totals on %s: %v", node.ID(), err)
	}
	return out
}

func tryTotals(ctx context.Context, node *Node, c Consistency, minIndex uint64) (map[string]keyAgg, error) {
	out := map[string]keyAgg{}
	var qerr error
	err := node.Read(ctx, c, minIndex, func(e fsm.View) {
		res, err := e.Query("T", totalsQuery)
		if err != nil {
			qerr = err
			return
		}
		for _, r := range res.Rows {
			if len(r) != 3 || r[0].T != siddhiql.TypeString {
				qerr = fmt.Errorf("unexpected row %v", r)
				return
			}
			a := out[r[0].S]
			a.total += r[1].I
			a.n += r[2].I
			out[r[0].S] = a
		}
	})
	if err != nil {
		return nil, err
	}
	return out, qerr
}

// render prints totals sorted by key, for messages.
func render(m map[string]keyAgg) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d/%d ", k, m[k].total, m[k].n)
	}
	return b.String()
}
