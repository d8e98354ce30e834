package raftnode

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/siddhiql"
)

// groupsApp is testApp with S partitioned by k: the app name, stream and aggregation are
// the same, so totals and tryTotals read it.
const groupsApp = `@app:name('T')
@distribution(strategy='partitioned', partitionKey='k')
define stream S (k string, v long);
define aggregation A from S select k, sum(v) as total, count() as n group by k aggregate every sec ... year;
`

// The shape of a groups cluster: every node hosts one replica of every group.
const (
	numNodes  = 3
	numGroups = 3
)

// nodeID is node n's server ID, the same in every group, as a real node's.
func nodeID(n int) string { return fmt.Sprintf("n%d", n+1) }

// groupAddr is the in-memory Raft address of node n's replica of group g.
func groupAddr(n, g int) raft.ServerAddress {
	return raft.ServerAddress(fmt.Sprintf("%s/g%d", nodeID(n), g))
}

// groups is an in-process cluster of numNodes nodes and numGroups partition groups: each
// group is its own Raft cluster over its own in-memory transports, and node n's replicas
// of all groups share the server ID nodeID(n).
type groups struct {
	t      *testing.T
	router *partition.Router
	def    *siddhiql.StreamDef // stream S, as the deployed app defines it

	mu     sync.Mutex
	nodes  [numNodes][numGroups]*Node
	trans  [numNodes][numGroups]*raft.InmemTransport
	cut    [numNodes]bool // isolated from the other nodes
	closed [numNodes]bool
}

// newGroups opens every replica, bootstraps every group on the first node, joins the
// others and deploys groupsApp to every group.
func newGroups(t *testing.T) *groups {
	t.Helper()
	gc := &groups{t: t, router: partition.NewRouter(numGroups)}
	t.Cleanup(gc.shutdown)
	dir := t.TempDir()
	logger := testLogger(t)
	for g := range numGroups {
		for n := range numNodes {
			_, tr := raft.NewInmemTransport(groupAddr(n, g))
			for m := range n {
				tr.Connect(groupAddr(m, g), gc.trans[m][g])
				gc.trans[m][g].Connect(groupAddr(n, g), tr)
			}
			gc.trans[n][g] = tr
		}
	}
	for n := range numNodes {
		for g := range numGroups {
			cfg := testConfig(t, nodeID(n), filepath.Join(dir, nodeID(n), fmt.Sprintf("group-%d", g)))
			cfg.Group = uint32(g)
			cfg.Bootstrap = n == 0
			cfg.Logger = logger.With("node", nodeID(n))
			cfg.Probe = gc.probe
			nd, err := Open(cfg, gc.trans[n][g])
			if err != nil {
				t.Fatalf("open %s group %d: %v", nodeID(n), g, err)
			}
			gc.nodes[n][g] = nd
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for g := range numGroups {
		// Only the bootstrapped replica is a member yet.
		leader := waitLeaderOf(t, func() []*Node { return []*Node{gc.node(0, g)} }, testTimeout)
		for n := 1; n < numNodes; n++ {
			if err := leader.Join(ctx, nodeID(n), string(groupAddr(n, g))); err != nil {
				t.Fatalf("group %d: join %s: %v", g, nodeID(n), err)
			}
		}
	}
	for g := range numGroups {
		// Joined nodes become voters once they have caught up.
		eventually(t, testTimeout, func() bool { return voterCount(gc.node(0, g)) == numNodes }, "group %d has %d voters", g, numNodes)
	}
	for g := range numGroups {
		name, idx, err := deployRetrying(ctx, func() *Node { return gc.leader(g) }, groupsApp)
		if err != nil || name != "T" {
			t.Fatalf("group %d: deploy: name %q, err %v", g, name, err)
		}
		for _, r := range gc.replicas(g) {
			if err := r.WaitApplied(ctx, idx); err != nil {
				t.Fatalf("group %d on %s: %v", g, r.ID(), err)
			}
		}
	}
	gc.nodes[0][0].FSM().Read(func(e fsm.View) { gc.def, _ = e.Stream("S") })
	if partition.KeyIndex(gc.def) != 0 {
		t.Fatalf("stream S: key index %d, routing %+v", partition.KeyIndex(gc.def), gc.def.Routing)
	}
	return gc
}

// probe answers for groupAddr(n, g) what node n's meta channel answers about group g.
func (gc *groups) probe(_ context.Context, addr string, _ uint32) (Meta, error) {
	for n := range numNodes {
		for g := range numGroups {
			if string(groupAddr(n, g)) != addr {
				continue
			}
			gc.mu.Lock()
			nd, closed := gc.nodes[n][g], gc.closed[n]
			gc.mu.Unlock()
			if nd == nil || closed {
				break
			}
			applied := nd.LogApplied()
			return Meta{ID: nodeID(n), RaftAddr: addr, Applied: &applied}, nil
		}
	}
	return Meta{}, fmt.Errorf("nothing answers at %s", addr)
}

// voterCount is how many voters nd's configuration has.
func voterCount(nd *Node) int {
	voters := 0
	for _, m := range nd.Status().Members {
		if m.Voter {
			voters++
		}
	}
	return voters
}

// node is node n's replica of group g.
func (gc *groups) node(n, g int) *Node {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return gc.nodes[n][g]
}

// replicasOf returns node n's replicas, in group order.
func (gc *groups) replicasOf(n int) []*Node {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return slices.Clone(gc.nodes[n][:])
}

// replicas returns group g's replicas on the nodes that are open and connected.
func (gc *groups) replicas(g int) []*Node {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	var out []*Node
	for n := range numNodes {
		if !gc.cut[n] && !gc.closed[n] {
			out = append(out, gc.nodes[n][g])
		}
	}
	return out
}

// open returns group g's replicas on every node not closed, isolated ones included: what
// a client can reach.
func (gc *groups) open(g int) []*Node {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	var out []*Node
	for n := range numNodes {
		if !gc.closed[n] {
			out = append(out, gc.nodes[n][g])
		}
	}
	return out
}

// leader waits until group g has exactly one leader that its connected replicas agree on.
func (gc *groups) leader(g int) *Node {
	gc.t.Helper()
	return waitLeaderOf(gc.t, func() []*Node { return gc.replicas(g) }, testTimeout)
}

// leaderNode is the position of the node that leads group g.
func (gc *groups) leaderNode(g int) int {
	gc.t.Helper()
	l := gc.leader(g)
	for n := range numNodes {
		if gc.node(n, g) == l {
			return n
		}
	}
	gc.t.Fatalf("group %d: leader %s is not a replica", g, l.ID())
	return -1
}

// currentLeader returns a replica of group g that believes it leads, or nil.
func (gc *groups) currentLeader(g int) *Node {
	for _, r := range gc.open(g) {
		if r.IsLeader() {
			return r
		}
	}
	return nil
}

// leadOn moves the leadership of group g to node n.
func (gc *groups) leadOn(g, n int) {
	gc.t.Helper()
	eventually(gc.t, testTimeout, func() bool {
		l := gc.currentLeader(g)
		if l == nil {
			return false
		}
		if l == gc.node(n, g) {
			return true
		}
		ctx, cancel := context.WithTimeout(gc.t.Context(), time.Second)
		defer cancel()
		if err := l.TransferLeadership(ctx, nodeID(n), string(groupAddr(n, g))); err != nil {
			gc.t.Logf("group %d: transfer to %s: %v (retrying)", g, nodeID(n), err)
		}
		return false
	}, "group %d led by %s", g, nodeID(n))
	if got := gc.leaderNode(g); got != n {
		gc.t.Fatalf("group %d: led by %s, want %s", g, nodeID(got), nodeID(n))
	}
}

// isolate cuts every replica of node n off from the other nodes, both ways.
func (gc *groups) isolate(n int) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	gc.cut[n] = true
	for g := range numGroups {
		gc.trans[n][g].DisconnectAll()
		for m := range numNodes {
			if m != n {
				gc.trans[m][g].Disconnect(groupAddr(n, g))
			}
		}
	}
}

// heal reconnects the replicas of every open node.
func (gc *groups) heal() {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for g := range numGroups {
		for a := range numNodes {
			for b := range numNodes {
				if a != b && !gc.closed[a] && !gc.closed[b] {
					gc.trans[a][g].Connect(groupAddr(b, g), gc.trans[b][g])
				}
			}
		}
	}
	gc.cut = [numNodes]bool{}
}

// stop closes every replica of node n concurrently, as a node shutting down does (a leader
// hands its group over first).
func (gc *groups) stop(n int) {
	gc.t.Helper()
	rs := gc.replicasOf(n)
	gc.mu.Lock()
	gc.closed[n] = true
	gc.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			if err := r.Close(ctx); err != nil {
				gc.t.Errorf("close %s group %d: %v", r.ID(), r.Group(), err)
			}
		})
	}
	wg.Wait()
}

// shutdown cuts every link, then closes every open replica concurrently.
func (gc *groups) shutdown() {
	gc.mu.Lock()
	var open []*Node
	for n := range numNodes {
		for g := range numGroups {
			if tr := gc.trans[n][g]; tr != nil {
				tr.DisconnectAll()
			}
			if nd := gc.nodes[n][g]; nd != nil && !gc.closed[n] {
				open = append(open, nd)
			}
		}
		gc.closed[n] = true
	}
	gc.mu.Unlock()
	var wg sync.WaitGroup
	for _, nd := range open {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := nd.Close(ctx); err != nil {
				gc.t.Errorf("close %s group %d: %v", nd.ID(), nd.Group(), err)
			}
		})
	}
	wg.Wait()
}

// route splits events by partition key and checks every event against partition.For.
func (gc *groups) route(events []expr.Row) ([]partition.Part, error) {
	parts := gc.router.Route(gc.def.Routing, partition.KeyIndex(gc.def), events)
	n := 0
	for _, p := range parts {
		for _, ev := range p.Events {
			if g := groupOf(ev[0].S); g != int(p.Group) {
				return nil, fmt.Errorf("event %v routed to group %d, partition.For says %d", ev, p.Group, g)
			}
		}
		n += len(p.Events)
	}
	if n != len(events) {
		return nil, fmt.Errorf("routing %d events gave parts of %d", len(events), n)
	}
	return parts, nil
}

// mustRoute is route for the test goroutine.
func (gc *groups) mustRoute(events []expr.Row) []partition.Part {
	gc.t.Helper()
	parts, err := gc.route(events)
	if err != nil {
		gc.t.Fatal(err)
	}
	return parts
}

// waitConverged waits until the connected replicas of group g hold identical FSM state at
// the same applied index, and returns that index.
func (gc *groups) waitConverged(g int) uint64 {
	gc.t.Helper()
	var idx uint64
	eventually(gc.t, testTimeout, func() bool {
		rs := gc.replicas(g)
		idx = rs[0].FSM().AppliedIndex()
		first, err := rs[0].FSM().State()
		if err != nil {
			gc.t.Fatalf("group %d on %s: state: %v", g, rs[0].ID(), err)
		}
		for _, r := range rs[1:] {
			if r.FSM().AppliedIndex() != idx {
				return false
			}
			s, err := r.FSM().State()
			if err != nil {
				gc.t.Fatalf("group %d on %s: state: %v", g, r.ID(), err)
			}
			if string(s) != string(first) {
				return false
			}
		}
		// The first replica may have applied more while the others were read.
		return rs[0].FSM().AppliedIndex() == idx
	}, "group %d: replicas converge to identical state", g)
	return idx
}

// groupOf is the group partition.For assigns to key k.
func groupOf(k string) int {
	return int(partition.For(partition.KeyBytes(nil, expr.String(k)), numGroups))
}

// keyOf returns a key that group g owns.
func keyOf(g int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("k%d", i); groupOf(k) == g {
			return k
		}
	}
}

// byGroup splits per-key totals by the group that owns each key.
func byGroup(m map[string]keyAgg) [numGroups]map[string]keyAgg {
	var out [numGroups]map[string]keyAgg
	for g := range out {
		out[g] = map[string]keyAgg{}
	}
	for k, a := range m {
		out[groupOf(k)][k] = a
	}
	return out
}

// checkGroups reads every group and checks that it holds exactly the keys it owns with
// exactly the totals of want, and that its replicas hold the same rows.
func (gc *groups) checkGroups(want map[string]keyAgg) {
	gc.t.Helper()
	wantBy := byGroup(want)
	union := map[string]keyAgg{}
	for g := range numGroups {
		if len(wantBy[g]) == 0 {
			gc.t.Errorf("group %d owns none of the %d keys: routing does not spread", g, len(want))
		}
		leader := gc.leader(g)
		got := totals(gc.t, leader, Linearizable, 0)
		for k := range got {
			if o := groupOf(k); o != g {
				gc.t.Errorf("group %d holds key %s, which belongs to group %d", g, k, o)
			}
		}
		if !maps.Equal(got, wantBy[g]) {
			gc.t.Errorf("group %d on %s:\n got %s\nwant %s", g, leader.ID(), render(got), render(wantBy[g]))
		}
		maps.Copy(union, got)
		// Every replica holds the same rows once it has applied what the leader has.
		applied := leader.FSM().AppliedIndex()
		for _, r := range gc.replicas(g) {
			if r == leader {
				continue
			}
			if s := totals(gc.t, r, Stale, applied); !maps.Equal(s, got) {
				gc.t.Errorf("group %d: follower %s at index %d has %s, leader %s", g, r.ID(), applied, render(s), render(got))
			}
			ctx, cancel := context.WithTimeout(gc.t.Context(), testTimeout)
			_, rows, err := r.MemoryRows(ctx, Stale, applied, "T", totalsQuery)
			cancel()
			if err != nil {
				gc.t.Fatalf("group %d: memory rows on %s: %v", g, r.ID(), err)
			}
			for _, sr := range rows {
				if k := sr.Row.Group[0].S; groupOf(k) != g {
					gc.t.Errorf("group %d on %s: in-memory row of key %s, which belongs to group %d", g, r.ID(), k, groupOf(k))
				}
			}
		}
	}
	if !maps.Equal(union, want) {
		gc.t.Errorf("union of the groups:\n got %s\nwant %s", render(union), render(want))
	}
}

// TestGroups_Routing sends batches of many keys through the router, each part to its
// group's leader: every group holds exactly its keys, and together exactly what was sent.
func TestGroups_Routing(t *testing.T) {
	gc := newGroups(t)
	const keys, batches, perBatch = 200, 12, 50
	want := map[string]keyAgg{}
	for b := range batches {
		events := make([]expr.Row, 0, perBatch)
		for i := range perBatch {
			k := fmt.Sprintf("key-%d", (b*perBatch+i*7)%keys)
			events = append(events, row(k, int64(b*1000+i+1)))
		}
		for _, p := range gc.mustRoute(events) {
			res := ingest(t, gc.leader(int(p.Group)), "router", uint64(b+1), p.Events...)
			if res.Parts[0].Events != len(p.Events) || res.Parts[0].Duplicate {
				t.Fatalf("batch %d group %d: %+v, want %d events applied", b, p.Group, res.Parts[0], len(p.Events))
			}
			for _, ev := range p.Events {
				a := want[ev[0].S]
				a.total += ev[1].I
				a.n++
				want[ev[0].S] = a
			}
		}
	}
	// A retried request is a duplicate in every group it reached, and changes nothing.
	first := make([]expr.Row, 0, perBatch)
	for i := range perBatch {
		first = append(first, row(fmt.Sprintf("key-%d", (i*7)%keys), int64(i+1)))
	}
	for _, p := range gc.mustRoute(first) {
		if res := ingest(t, gc.leader(int(p.Group)), "router", 1, p.Events...); !res.Parts[0].Duplicate {
			t.Errorf("group %d: retried batch 1: %+v, want a duplicate", p.Group, res.Parts[0])
		}
	}
	gc.checkGroups(want)
	for g := range numGroups {
		gc.waitConverged(g)
	}
}

// groupLoader is one client sending requests of events with several keys, split by the
// router, each part to its group's leader with the request's producer seq, retried until
// acknowledged: every acknowledged event must be counted exactly once.
type groupLoader struct {
	id      int
	acks    atomic.Int64 // requests fully acknowledged
	retried atomic.Int64 // parts sent again after an unknown outcome
	dups    atomic.Int64 // parts acknowledged as duplicates: an earlier try had applied
	// sent is what the acknowledged parts carried; written by the loader goroutine only,
	// read after it ends.
	sent    map[string]keyAgg
	pending int // parts whose outcome was unknown when the loader stopped
}

// run sends requests until stop is closed (between requests), ctx ends or maxSeq is
// reached. onAck is called with the group and node of each acknowledged part.
func (l *groupLoader) run(ctx context.Context, gc *groups, stop <-chan struct{}, onAck func(g int, n *Node)) {
	l.sent = map[string]keyAgg{}
	producer := fmt.Sprintf("p%d", l.id)
	for seq := uint64(1); seq <= maxSeq; seq++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		events := make([]expr.Row, 0, 8)
		for i := range 8 {
			events = append(events, row(fmt.Sprintf("k%d", (int(seq)*3+i*5+l.id)%40), int64(seq)))
		}
		parts, err := gc.route(events)
		if err != nil {
			gc.t.Errorf("loader %d seq %d: %v", l.id, seq, err)
			l.pending++
			return
		}
		acked := make([]bool, len(parts))
		var wg sync.WaitGroup
		for i, p := range parts {
			wg.Go(func() { acked[i] = l.send(ctx, gc, producer, seq, p, onAck) })
		}
		wg.Wait()
		for i, p := range parts {
			if !acked[i] {
				l.pending++
				continue
			}
			for _, ev := range p.Events {
				a := l.sent[ev[0].S]
				a.total += ev[1].I
				a.n++
				l.sent[ev[0].S] = a
			}
		}
		if l.pending > 0 {
			return
		}
		l.acks.Add(1)
	}
}

// send proposes one part on whichever replica of its group leads, until acknowledged or
// ctx ends.
func (l *groupLoader) send(ctx context.Context, gc *groups, producer string, seq uint64, p partition.Part, onAck func(int, *Node)) bool {
	g := int(p.Group)
	for ctx.Err() == nil {
		node := gc.currentLeader(g)
		if node == nil {
			pause(ctx)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		res, err := node.Ingest(rctx, []fsm.Part{{Stream: "S", ProducerID: producer, Seq: seq, Events: p.Events}})
		cancel()
		if err == nil {
			if pr := res.Parts[0]; pr.Err != nil {
				gc.t.Errorf("loader %d seq %d group %d: part error %v", l.id, seq, g, pr.Err)
				return false
			}
			if res.Parts[0].Duplicate {
				l.dups.Add(1)
			}
			onAck(g, node)
			return true
		}
		// ErrNotLeader: nothing was proposed. Otherwise the outcome is unknown: the entry
		// may still commit, and the same seq sent again is then a duplicate.
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
			l.retried.Add(1)
		}
		pause(ctx)
	}
	return false
}

func TestGroups_NodeFailure(t *testing.T) {
	// isolate: the node is cut off and heals at the end; crash: cut off, then closed.
	for _, mode := range []string{"isolate", "crash"} {
		t.Run(mode, func(t *testing.T) { testGroupsNodeFailure(t, mode) })
	}
}

func testGroupsNodeFailure(t *testing.T, mode string) {
	gc := newGroups(t)
	// The victim leads every group, so every group fails over.
	const victim = 0
	for g := range numGroups {
		gc.leadOn(g, victim)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	var failedAt atomic.Int64             // unix nanos when the node was taken down
	var recovered [numGroups]atomic.Int64 // unix nanos of each group's first ack by another node after that
	onAck := func(g int, n *Node) {
		if f := failedAt.Load(); f != 0 && n.ID() != nodeID(victim) {
			recovered[g].CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	loaders := make([]*groupLoader, 4)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range loaders {
		loaders[i] = &groupLoader{id: i}
		wg.Go(func() { loaders[i].run(ctx, gc, stop, onAck) })
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()
	waitAcks := func(n int64, what string) {
		t.Helper()
		base := make([]int64, len(loaders))
		for i, l := range loaders {
			base[i] = l.acks.Load()
		}
		eventually(t, testTimeout, func() bool {
			for i, l := range loaders {
				if l.acks.Load() < base[i]+n {
					return false
				}
			}
			return true
		}, "%s", what)
	}
	waitAcks(20, "steady load before the failure")

	failedAt.Store(time.Now().UnixNano())
	gc.isolate(victim)
	if mode == "crash" {
		gc.stop(victim)
	}
	// The time each group has a leader on the surviving nodes that they agree on.
	var elected [numGroups]time.Duration
	eventually(t, testTimeout, func() bool {
		done := true
		for g := range numGroups {
			if elected[g] != 0 {
				continue
			}
			if l := agreedLeader(gc.replicas(g)); l != nil && l.ID() != nodeID(victim) {
				elected[g] = time.Duration(time.Now().UnixNano() - failedAt.Load())
				continue
			}
			done = false
		}
		return done
	}, "every group elects a leader among the surviving nodes")
	eventually(t, testTimeout, func() bool {
		for g := range recovered {
			if recovered[g].Load() == 0 {
				return false
			}
		}
		return true
	}, "every group acknowledges writes on a surviving node")
	for g := range numGroups {
		failover := time.Duration(recovered[g].Load() - failedAt.Load())
		t.Logf("%s: group %d: leader elected after %s, first write acknowledged after %s",
			mode, g, elected[g].Round(time.Millisecond), failover.Round(time.Millisecond))
		if failover > 3*time.Second {
			t.Errorf("group %d: failover took %s", g, failover)
		}
	}
	waitAcks(10, "load continues on the new leaders")
	stopLoad()
	if mode == "isolate" {
		gc.heal()
	}

	want := map[string]keyAgg{}
	for _, l := range loaders {
		if l.pending > 0 {
			t.Errorf("loader %d: %d parts without an acknowledgement", l.id, l.pending)
		}
		t.Logf("loader %d: %d requests acknowledged, %d parts retried after an unknown outcome, %d acknowledged as duplicates",
			l.id, l.acks.Load(), l.retried.Load(), l.dups.Load())
		for k, a := range l.sent {
			w := want[k]
			w.total += a.total
			w.n += a.n
			want[k] = w
		}
	}
	gc.checkGroups(want)
	for g := range numGroups {
		idx := gc.waitConverged(g)
		t.Logf("group %d: %d replicas converged at index %d", g, len(gc.replicas(g)), idx)
	}
}

// agreedLeader returns the replica that leads and that every one of rs names as leader, or
// nil.
func agreedLeader(rs []*Node) *Node {
	var leader *Node
	for _, r := range rs {
		if r.IsLeader() {
			if leader != nil {
				return nil
			}
			leader = r
		}
	}
	if leader == nil {
		return nil
	}
	for _, r := range rs {
		if id, _, err := r.Leader(); err != nil || id != leader.ID() {
			return nil
		}
	}
	return leader
}

// TestGroups_CloseHandsOver closes a node that leads two groups: each is handed over to
// another node at once (no election timeout), and the group it did not lead keeps its
// leader.
func TestGroups_CloseHandsOver(t *testing.T) {
	gc := newGroups(t)
	gc.leadOn(0, 0)
	gc.leadOn(1, 0)
	gc.leadOn(2, 2)
	var terms [numGroups]uint64
	for g := range numGroups {
		terms[g] = gc.leader(g).Status().Term
	}

	start := time.Now()
	gc.stop(0)
	closed := time.Since(start)
	var handover [numGroups]time.Duration
	eventually(t, testTimeout, func() bool {
		done := true
		for g := range numGroups {
			if handover[g] == 0 {
				if l := agreedLeader(gc.replicas(g)); l != nil {
					handover[g] = time.Since(start)
					continue
				}
				done = false
			}
		}
		return done
	}, "every group has a leader on the open nodes")
	t.Logf("Close of %s's replicas took %s", nodeID(0), closed.Round(time.Millisecond))
	for g := range numGroups {
		l := gc.leader(g)
		t.Logf("group %d: led by %s after %s (term %d, was %d)", g, l.ID(), handover[g].Round(time.Millisecond), l.Status().Term, terms[g])
		if g < 2 {
			if handover[g] > time.Second {
				t.Errorf("group %d: new leader after %s: leadership was not handed over", g, handover[g])
			}
			if term := l.Status().Term; term <= terms[g] {
				t.Errorf("group %d: new leader's term %d, old %d", g, term, terms[g])
			}
		} else if l != gc.node(2, 2) || l.Status().Term != terms[g] {
			t.Errorf("group 2: led by %s in term %d, want %s still in term %d", l.ID(), l.Status().Term, nodeID(2), terms[g])
		}
		ingest(t, l, "after-close", 1, row(keyOf(g), 1))
	}
}
