package raftnode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/siddhiql"
)

// tap records the Upsert calls each node makes on a shared memStore and can hold one call
// (before it writes) until released.
type tap struct {
	mu    sync.Mutex
	calls map[string][]tapCall // by node ID
	// written counts, by node ID, the calls that have returned.
	written map[string]int
	// holdID's holdAt-th call (1-based) closes held, waits for release, and closes done
	// once it has written.
	holdID        string
	holdAt        int
	held, release chan struct{}
	done          chan struct{}
}

// tapCall is one Upsert call: its granularity, rows and the least row index among them.
type tapCall struct {
	d        siddhiql.Duration
	rows     int
	minIndex uint64
}

func newTap() *tap {
	return &tap{calls: map[string][]tapCall{}, written: map[string]int{}, held: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
}

// arm holds node id's at-th Upsert call from now on.
func (tp *tap) arm(id string, at int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.holdID, tp.holdAt = id, at
	clear(tp.calls)
	clear(tp.written)
}

func (tp *tap) callsOf(id string) []tapCall {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.calls[id])
}

// tapStore is one node's Store: the shared memStore through the tap.
type tapStore struct {
	*memStore
	id  string
	tap *tap
}

func (s *tapStore) Upsert(ctx context.Context, def *agg.Def, d siddhiql.Duration, shard string, rows []*agg.Row) (int, error) {
	tp := s.tap
	call := tapCall{d: d, rows: len(rows), minIndex: ^uint64(0)}
	for _, r := range rows {
		call.minIndex = min(call.minIndex, r.Index)
	}
	tp.mu.Lock()
	tp.calls[s.id] = append(tp.calls[s.id], call)
	hold := s.id == tp.holdID && len(tp.calls[s.id]) == tp.holdAt
	tp.mu.Unlock()
	if hold {
		close(tp.held)
		select {
		case <-tp.release:
		case <-ctx.Done():
		}
		defer close(tp.done)
	}
	n, err := s.memStore.Upsert(ctx, def, d, shard, rows)
	tp.mu.Lock()
	tp.written[s.id]++
	tp.mu.Unlock()
	return n, err
}

func (tp *tap) writtenBy(id string) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.written[id]
}

// withTap gives every node the shared store st through tp, flushes only when asked
// (flushNow), in chunks of chunk rows.
func withTap(st *memStore, tp *tap, chunk int) func(*Config) {
	return func(c *Config) {
		c.Store = &tapStore{memStore: st, id: c.ID, tap: tp}
		c.ShardID = "shard-a"
		c.FlushInterval = time.Hour
		c.TickInterval = 50 * time.Millisecond
		c.MaxUnflushedRows = 1_000_000
		c.FlushChunkRows = chunk
	}
}

// flushNow asks node's flusher for a flush at once.
func flushNow(n *Node) {
	select {
	case n.flush.now <- struct{}{}:
	default:
	}
}

// storedSums sums total and n per key over every row of every granularity table of
// aggregation A in st, by granularity.
func storedSums(st *memStore) map[string]map[string]keyAgg {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[string]map[string]keyAgg{}
	for name, rows := range st.tables {
		m := map[string]keyAgg{}
		for _, sr := range rows {
			k := sr.Row.Group[0].S
			a := m[k]
			a.total += sr.Row.Bases[0].I
			a.n += sr.Row.Bases[1].I
			m[k] = a
		}
		out[name] = m
	}
	return out
}

// storeDump prints every stored row with its index, to see that nothing changed.
func storeDump(st *memStore) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var lines []string
	for name, rows := range st.tables {
		for k, sr := range rows {
			lines = append(lines, fmt.Sprintf("%s %s %v %d", name, k, sr.Row.Bases, sr.Row.Index))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// storedExactly reports whether every granularity's table of A holds exactly want.
func storedExactly(st *memStore, want map[string]keyAgg) (bool, string) {
	sums := storedSums(st)
	if len(sums) != 6 {
		return false, fmt.Sprintf("%d granularity tables, want 6", len(sums))
	}
	for name, m := range sums {
		if render(m) != render(want) {
			return false, fmt.Sprintf("%s: %s", name, render(m))
		}
	}
	return true, ""
}

// TestFlush_PlanChunks: a backlog is cut into chunks of at most FlushChunkRows rows,
// except one log index's rows, which are never split; the chunks cover every changed row
// once, and the last ends at the applied index.
func TestFlush_PlanChunks(t *testing.T) {
	st, tp := newMemStore(), newTap()
	c := newCluster(t, 1, withTap(st, tp, 12))
	leader := c.waitLeader(testTimeout)
	c.deploy()
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")
	for i := range 7 {
		ingest(t, leader, "p", uint64(i+1), row(fmt.Sprintf("k%d", i), 1))
	}
	// One entry of three new keys: 18 rows, more than a chunk.
	ingest(t, leader, "p", 8, row("x", 1), row("y", 1), row("z", 1))
	ingest(t, leader, "p", 9, row("k0", 1))
	bounds, planned := leader.planChunks(0)
	if len(bounds) < 4 {
		t.Fatalf("chunks end at %v: want at least 4 chunks for 60-odd rows in chunks of 12", bounds)
	}
	if last := bounds[len(bounds)-1]; last != leader.fsm.AppliedIndex() {
		t.Fatalf("the last chunk ends at %d, want the applied index %d", last, leader.fsm.AppliedIndex())
	}
	total, since := 0, uint64(0)
	for _, upto := range bounds {
		cp := leader.capture(since, upto, true, false)
		indexes := map[uint64]bool{}
		for _, ca := range cp.aggs {
			for _, rows := range ca.rows {
				for _, r := range rows {
					indexes[r.Index] = true
				}
			}
		}
		if cp.rows > 12 && len(indexes) > 1 {
			t.Errorf("chunk (%d, %d] holds %d rows of %d log indexes, over the bound of 12", since, upto, cp.rows, len(indexes))
		}
		total += cp.rows
		since = upto
	}
	all := leader.capture(0, since, true, false)
	if total != all.rows || total == 0 || planned != total {
		t.Fatalf("the chunks hold %d rows (planned %d), the backlog %d", total, planned, all.rows)
	}
	if got := leader.unflushedRows(); got != int64(total) {
		t.Fatalf("live backlog %d rows, want the %d the chunks hold", got, total)
	}
}

// TestFlush_ChunksSurviveLeaderChange: the leader flushes a backlog in chunks and loses
// leadership between two chunks, or in the middle of one's write. The new leader resumes
// after the last chunk replicated (it writes no row at or before that flushed index), the
// store ends with exactly the right totals in every granularity, and the deposed leader's
// late writes change nothing.
func TestFlush_ChunksSurviveLeaderChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		holdAt int // the deposed leader's Upsert call held: one per granularity and chunk
	}{
		{"between chunks", 7}, // the second chunk's first write
		{"inside a chunk", 9}, // the second chunk's third granularity
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, tp := newMemStore(), newTap()
			c := newCluster(t, 3, withTap(st, tp, 12))
			old := c.waitLeader(testTimeout)
			c.deploy()
			eventually(t, testTimeout, func() bool { return old.ShardID() == "shard-a" }, "shard ID replicated")
			want := map[string]keyAgg{}
			var last uint64
			for i := range 10 {
				k := fmt.Sprintf("k%d", i)
				last = ingest(t, old, "p", uint64(i+1), row(k, int64(i+1))).Index
				want[k] = keyAgg{int64(i + 1), 1}
			}
			// Every key is one entry of six rows: a chunk of 12 rows is two keys, written
			// one Upsert per granularity.
			tp.arm(old.ID(), tc.holdAt)
			flushNow(old)
			select {
			case <-tp.held:
			case <-time.After(testTimeout):
				t.Fatalf("the leader's Upsert call %d never came; calls: %v", tc.holdAt, tp.callsOf(old.ID()))
			}
			_, resumeAfter := old.fsm.ShardID()
			if resumeAfter == 0 || resumeAfter >= last {
				t.Fatalf("flushed index %d when the second chunk is written, want one chunk replicated (between 0 and %d)", resumeAfter, last)
			}
			if calls := tp.callsOf(old.ID()); len(calls) < 6 || calls[0].rows+calls[1].rows > 4 {
				t.Fatalf("first chunk's calls %v: want one per granularity of two rows each", calls)
			}
			if err := old.raft.LeadershipTransfer().Error(); err != nil {
				t.Fatalf("leadership transfer: %v", err)
			}
			next := waitLeaderOf(t, func() []*Node { return c.others(old) }, testTimeout)
			// A key of the held chunk changes again: its newer row must win over the deposed
			// leader's late write.
			ingest(t, next, "q", 1, row("k3", 100))
			want["k3"] = keyAgg{104, 2}
			eventually(t, testTimeout, func() bool {
				flushNow(next)
				ok, _ := storedExactly(st, want)
				return ok
			}, "the new leader's flush stores exactly %s in every granularity", render(want))
			for _, call := range tp.callsOf(next.ID()) {
				if call.minIndex <= resumeAfter {
					t.Fatalf("the new leader wrote a %s row of index %d, at or before the replicated flushed index %d: it did not resume after the last chunk", call.d, call.minIndex, resumeAfter)
				}
			}
			if len(tp.callsOf(next.ID())) == 0 {
				t.Fatal("the new leader wrote nothing")
			}
			before := storeDump(st)
			close(tp.release)
			<-tp.done
			// The deposed leader writes the rest of its chunk (six granularities, calls 7 to
			// 12), then finds the group's flushed index past it and replicates nothing.
			eventually(t, testTimeout, func() bool { return tp.writtenBy(old.ID()) >= 12 }, "the deposed leader writes the rest of its chunk (%d calls returned)", tp.writtenBy(old.ID()))
			if after := storeDump(st); after != before {
				t.Fatalf("the deposed leader's late chunk changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if ok, got := storedExactly(st, want); !ok {
				t.Fatalf("stored totals %s, want %s", got, render(want))
			}
			if got := render(queryTotals(t, next, Linearizable)); got != render(want) {
				t.Fatalf("merged totals %s, want %s", got, render(want))
			}
		})
	}
}

// TestFlush_BacklogCountedLive: with the store down, the backlog is counted as rows change
// (six rows per new key), so ingest is refused with ErrBacklog exactly once the rows
// waiting pass the bound, /metrics shows them, and everything reaches the store once it
// is back.
func TestFlush_BacklogCountedLive(t *testing.T) {
	st := newMemStore()
	c := newCluster(t, 1, withStore(st, 30))
	leader := c.waitLeader(testTimeout)
	c.deploy()
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")
	st.setDown(true)
	ingest(t, leader, "p", 1, row("k0", 1))
	eventually(t, testTimeout, func() bool { return leader.FlushError() != nil }, "the flusher notices the outage")
	acked, refused := ingestUntilBacklog(t, leader, 1, 50, 0)
	acked++ // k0 above
	// Six keys are 36 rows: the sixth was accepted at 30 rows, the seventh refused.
	if refused == nil || acked != 6 {
		t.Fatalf("acknowledged %d new keys with a bound of 30 rows (six per key), refused: %v; want 6, then ErrBacklog", acked, refused)
	}
	if got := leader.Metrics().FlushBacklog; got != 36 {
		t.Fatalf("backlog metric %d, want 36 rows", got)
	}
	st.setDown(false)
	eventually(t, testTimeout, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := leader.Ingest(ctx, []fsm.Part{part("p", 1000, row("after", 1))})
		return err == nil
	}, "ingest resumes after the store returns")
	eventually(t, testTimeout, func() bool {
		return len(queryTotals(t, leader, Stored)) == acked+1
	}, "every acknowledged key in the store")
	eventually(t, testTimeout, func() bool { return leader.Metrics().FlushBacklog == 0 }, "the backlog drains to 0 (now %d)", leader.Metrics().FlushBacklog)
}

// TestFlush_FencedChunkStillReplicates: when every row of a chunk is already in the store at
// its index (a deposed leader wrote it and lost leadership before replicating it), the
// fence writes nothing, and the chunk's flushed index is replicated all the same, so the
// rows can leave memory.
func TestFlush_FencedChunkStillReplicates(t *testing.T) {
	st, tp := newMemStore(), newTap()
	c := newCluster(t, 1, withTap(st, tp, 12))
	leader := c.waitLeader(testTimeout)
	c.deploy()
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")
	last := ingest(t, leader, "p", 1, row("a", 1)).Index
	ingest(t, leader, "p", 2, row("b", 2))
	// What an earlier leader wrote before it lost leadership.
	cp := leader.capture(0, leader.fsm.AppliedIndex(), true, false)
	for _, ca := range cp.aggs {
		for d, rows := range ca.rows {
			if _, err := st.Upsert(t.Context(), ca.def, d, "shard-a", rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := storeDump(st)
	eventually(t, testTimeout, func() bool {
		flushNow(leader)
		_, flushed := leader.fsm.ShardID()
		return flushed > last
	}, "the flushed index passes %d though the fence wrote nothing", last)
	if after := storeDump(st); after != before {
		t.Fatalf("the fenced flush changed the store:\n%s\nthen:\n%s", before, after)
	}
}
