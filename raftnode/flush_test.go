package raftnode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/siddhiql"
)

// memStore is an in-memory Store with the same fencing rule as the SQL stores: a row is
// replaced only by a newer index. down makes every call fail, as an unreachable database.
type memStore struct {
	mu     sync.Mutex
	tables map[string]map[string]agg.ShardRow // table → primary key → row
	down   bool
	writes int
}

func newMemStore() *memStore { return &memStore{tables: map[string]map[string]agg.ShardRow{}} }

var errDown = errors.New("memstore: connection refused")

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

func table(def *agg.Def, d siddhiql.Duration) string { return def.Name + "_" + d.String() }

func (m *memStore) Ensure(context.Context, *agg.Def) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	return nil
}

func (m *memStore) Upsert(_ context.Context, def *agg.Def, d siddhiql.Duration, shard string, rows []*agg.Row) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return 0, errDown
	}
	t := m.tables[table(def, d)]
	if t == nil {
		t = map[string]agg.ShardRow{}
		m.tables[table(def, d)] = t
	}
	n := 0
	for _, r := range rows {
		k := fmt.Sprintf("%d/%s/%d/%s", r.AggTimestamp, shard, r.EventTimestamp, r.GroupKey())
		if old, ok := t[k]; ok && old.Row.Index >= r.Index {
			continue
		}
		t[k] = agg.ShardRow{Shard: shard, Row: r.Clone()}
		n++
	}
	m.writes += n
	return n, nil
}

func (m *memStore) Read(_ context.Context, def *agg.Def, d siddhiql.Duration, start, end int64) ([]agg.ShardRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, errDown
	}
	var out []agg.ShardRow
	for _, sr := range m.tables[table(def, d)] {
		t := sr.Row.AggTimestamp
		if def.EventTime {
			t = sr.Row.EventTimestamp
		}
		if t >= start && t < end {
			out = append(out, agg.ShardRow{Shard: sr.Shard, Row: sr.Row.Clone()})
		}
	}
	return out, nil
}

func (m *memStore) Purge(context.Context, *agg.Def, siddhiql.Duration, string, int64) (int64, error) {
	return 0, nil
}

// queryTotals answers totalsQuery through Node.Query (memory merged with the store).
func queryTotals(t testing.TB, node *Node, c Consistency) map[string]keyAgg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	res, err := node.Query(ctx, c, 0, "T", totalsQuery)
	if err != nil {
		t.Fatalf("query on %s: %v", node.ID(), err)
	}
	out := map[string]keyAgg{}
	for _, r := range res.Rows {
		a := out[r[0].S]
		a.total += r[1].I
		a.n += r[2].I
		out[r[0].S] = a
	}
	return out
}

func withStore(s Store, bound int) func(*Config) {
	return func(c *Config) {
		c.Store, c.ShardID = s, "shard-a"
		c.FlushInterval = 20 * time.Millisecond
		c.TickInterval = 50 * time.Millisecond
		c.MaxUnflushedRows = bound
	}
}

// TestFlush_RowsReachTheStoreAndLeaveMemory: the leader flushes, replicas drop what the store
// holds once their buckets close, and every way of asking gives the same totals.
func TestFlush_RowsReachTheStoreAndLeaveMemory(t *testing.T) {
	st := newMemStore()
	c := newCluster(t, 3, withStore(st, 1_000_000))
	leader := c.waitLeader(testTimeout)
	c.deploy()
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")
	for i := range 20 {
		ingest(t, leader, "p", uint64(i+1), row("a", 1), row("b", 2))
	}
	want := map[string]keyAgg{"a": {20, 20}, "b": {40, 20}}
	// The stored rows alone reach the full totals once the flush ran.
	eventually(t, testTimeout, func() bool {
		return render(queryTotals(t, leader, Stored)) == render(want)
	}, "stored totals reach %s", render(want))
	// Seconds pass: closed rows leave every replica's memory.
	for _, n := range c.live() {
		eventually(t, testTimeout, func() bool {
			var held int
			n.fsm.Read(func(e fsm.View) {
				for _, a := range e.Apps() {
					s, _ := a.Aggregation("A")
					held += s.Len()
				}
			})
			_, flushed := n.fsm.ShardID()
			// What stays is at most the open minute … year rows of the two keys.
			return flushed > 0 && held <= 10
		}, "%s drops flushed rows", n.ID())
	}
	for _, n := range c.live() {
		if got := queryTotals(t, n, Stale); render(got) != render(want) {
			t.Errorf("%s stale merged totals = %s, want %s", n.ID(), render(got), render(want))
		}
	}
	if got := queryTotals(t, leader, Linearizable); render(got) != render(want) {
		t.Errorf("linearizable merged totals = %s, want %s", render(got), render(want))
	}
	// Rows written twice (a new leader re-flushes what it still holds, or everything) leave
	// the totals unchanged.
	before := render(queryTotals(t, leader, Stored))
	if err := leader.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	next := c.waitLeader(testTimeout)
	for _, n := range c.live() {
		cp := n.capture(0, math.MaxUint64, true, false)
		for _, ca := range cp.aggs {
			for d, rows := range ca.rows {
				if _, err := st.Upsert(t.Context(), ca.def, d, "shard-a", rows); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	ingest(t, next, "p", 1000, row("c", 5))
	want["c"] = keyAgg{5, 1}
	eventually(t, testTimeout, func() bool {
		return render(queryTotals(t, next, Stored)) == render(want)
	}, "the new leader flushes: stored totals reach %s (were %s)", render(want), before)
}

// TestFlush_StoreOutage: while the store is down nothing is lost; past the bound ingest is
// refused with ErrBacklog; when it returns, the backlog drains and ingest resumes by itself.
func TestFlush_StoreOutage(t *testing.T) {
	st := newMemStore()
	c := newCluster(t, 1, withStore(st, 12))
	leader := c.waitLeader(testTimeout)
	c.deploy()
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")
	st.setDown(true)
	// The pause lets the flusher notice the outage and count rows.
	acked, refused := ingestUntilBacklog(t, leader, 0, 200, 10*time.Millisecond)
	if refused == nil {
		t.Fatalf("200 ingests with the store down and a bound of 12 rows were all accepted")
	}
	t.Logf("refused after %d acknowledged ingests: %v", acked, refused)
	st.setDown(false)
	eventually(t, testTimeout, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := leader.Ingest(ctx, []fsm.Part{part("p", 10_000, row("after", 1))})
		return err == nil
	}, "ingest resumes after the store returns")
	eventually(t, testTimeout, func() bool {
		got := queryTotals(t, leader, Stored)
		return len(got) == acked+1
	}, "every acknowledged key in the store")
}

// TestFlush_AtSnapshot: a snapshot makes the leader flush without waiting for the interval.
func TestFlush_AtSnapshot(t *testing.T) {
	st := newMemStore()
	c := newCluster(t, 1, withStore(st, 1_000_000), func(cfg *Config) { cfg.FlushInterval = time.Hour })
	leader := c.waitLeader(testTimeout)
	c.deploy()
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")
	ingest(t, leader, "p", 1, row("a", 7))
	if got := queryTotals(t, leader, Stored); len(got) != 0 {
		t.Fatalf("stored before any flush: %s", render(got))
	}
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	eventually(t, testTimeout, func() bool {
		return render(queryTotals(t, leader, Stored)) == render(map[string]keyAgg{"a": {7, 1}})
	}, "the snapshot's flush reaches the store")
}

// ingestUntilBacklog sends producer p one new key k<i> per ingest, for i from from up to
// max, until the leader refuses one with ErrBacklog; it returns how many were acknowledged
// and the refusal (nil if none was refused). Any other error fails the test.
func ingestUntilBacklog(t *testing.T, leader *Node, from, max int, pause time.Duration) (acked int, refused error) {
	t.Helper()
	for i := from; i < max && refused == nil; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		_, err := leader.Ingest(ctx, []fsm.Part{part("p", uint64(i+1), row(fmt.Sprintf("k%d", i), 1))})
		cancel()
		switch {
		case err == nil:
			acked++
		case errors.Is(err, ErrBacklog):
			refused = err
		default:
			t.Fatalf("ingest %d: %v", i, err)
		}
		time.Sleep(pause)
	}
	return acked, refused
}
