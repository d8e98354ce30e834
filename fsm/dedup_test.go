package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"testing"

	"github.com/tally-db/tally/internal/wire"
)

// TestDedupWindow checks the anti-replay window on the table alone against a model that
// remembers every seq.
func TestDedupWindow(t *testing.T) {
	d := newDedup(10, DefaultProducerTTL)
	seen := map[uint64]bool{}
	var high uint64
	// Seqs jump forward by various strides (including exactly DedupWindow and DedupWindow+1) and fill
	// in behind.
	seqs := []uint64{5, 3, 4, 70, 64, 65, 6, 1000, 1060, 1100, 1099, 77, 76, 75, 2124, 2125, 3150, 3149, 2126, 5000, 5001, 3977, 3976}
	for i, s := range seqs {
		var want verdict
		switch {
		case len(seen) > 0 && s+DedupWindow < high:
			want = tooOld
		case seen[s]:
			want = duplicate
		default:
			want = fresh
		}
		if got := d.check("p", s); got != want {
			t.Fatalf("step %d seq %d: verdict %d, want %d (high %d)", i, s, got, want, high)
		}
		if want == fresh {
			d.record("p", s, uint64(i+1), 0)
			seen[s] = true
			high = max(high, s)
		}
		// Every seq in the window must match the model.
		lo := uint64(0)
		if high > DedupWindow {
			lo = high - DedupWindow
		}
		for q := lo; q <= high; q++ {
			if got := d.check("p", q) == duplicate; got != seen[q] {
				t.Fatalf("after seq %d: seq %d duplicate=%v, model says %v", s, q, got, seen[q])
			}
		}
		if lo > 0 && d.check("p", lo-1) != tooOld {
			t.Fatalf("after seq %d: seq %d (below %d) is not too old", s, lo-1, lo)
		}
	}
	if d.seenCount("p") == 0 || d.seenCount("nobody") != 0 {
		t.Error("seenCount")
	}
}

func TestDedupEvictionOrder(t *testing.T) {
	d := newDedup(3, DefaultProducerTTL)
	d.record("c", 1, 1, 0)
	d.record("b", 1, 2, 0)
	d.record("a", 1, 2, 0) // b and a share index 2
	d.record("c", 2, 3, 0) // c is now the newest
	if !d.record("d", 1, 4, 0) {
		t.Fatal("adding a 4th producer evicted nothing")
	}
	// Oldest index is 2 (a, b): the smaller id, a, goes.
	if d.check("a", 1) != fresh || d.check("b", 1) != duplicate || d.check("c", 2) != duplicate {
		t.Fatalf("evicted the wrong producer: a=%d b=%d c=%d", d.check("a", 1), d.check("b", 1), d.check("c", 2))
	}
	d.record("e", 1, 5, 0)
	if d.check("b", 1) != fresh || d.Len() != 3 {
		t.Fatal("b should have gone next")
	}
	if d.record("c", 3, 6, 0) {
		t.Error("updating a known producer evicted")
	}
}

func TestDedupEncodeRoundTrip(t *testing.T) {
	d := newDedup(100, DefaultProducerTTL)
	for i := range 50 {
		d.record(fmt.Sprintf("p%02d", i%7), uint64(i*i%300), uint64(i/3+1), 0)
	}
	var w wire.Writer
	d.encode(&w)
	got, err := decodeDedup(wire.NewReader(w.Buf), 100, DefaultProducerTTL, SnapshotVersion, 0)
	if err != nil {
		t.Fatal(err)
	}
	var w2 wire.Writer
	got.encode(&w2)
	if !bytes.Equal(w.Buf, w2.Buf) {
		t.Fatal("dedup re-encodes differently")
	}
	// A smaller limit on restore evicts by the rule: the oldest indexes go.
	small, err := decodeDedup(wire.NewReader(w.Buf), 2, DefaultProducerTTL, SnapshotVersion, 0)
	if err != nil {
		t.Fatal(err)
	}
	if small.Len() != 2 {
		t.Fatalf("Len = %d, want 2", small.Len())
	}
	for _, bad := range [][]byte{
		{1, 1, 'b', 0, 0, 17},                 // too many words
		{2, 1, 'b', 0, 0, 0, 1, 'a', 0, 0, 0}, // not sorted
		{2, 1, 'a', 0, 0, 0, 1, 'a', 0, 0, 0}, // duplicate id
		{1, 1, 'a', 0, 0, 2, 0},               // short
	} {
		if _, err := decodeDedup(wire.NewReader(bad), 10, DefaultProducerTTL, 1, 0); err == nil {
			t.Errorf("decodeDedup(% x) succeeded", bad)
		}
	}
}

// TestDedupThroughEngine checks dedup end to end, counting through a store query.
func TestDedupThroughEngine(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	idx := uint64(0)
	next := func(c Command) *ApplyResult { idx++; return mustApply(t, f, idx, c) }
	next(Command{Kind: KindDeploy, Time: t0, Text: testApp})

	// A retried request is counted once.
	if r := next(batch(t0+1, part("S", "p", 1, ev("a", 5)))); r.Parts[0].Events != 1 {
		t.Fatal(render(r))
	}
	if r := next(batch(t0+2, part("S", "p", 1, ev("a", 5)))); !r.Parts[0].Duplicate || r.Parts[0].Err != nil || r.Parts[0].Events != 0 || len(r.Outputs) != 0 {
		t.Fatalf("retry: %s", render(r))
	}
	// Out of order within the window: both apply; the same seq twice in one entry applies once.
	r := next(batch(t0+3, part("S", "p", 3, ev("a", 10)), part("S", "p", 2, ev("a", 100)), part("S", "p", 2, ev("a", 100))))
	if r.Parts[0].Events != 1 || r.Parts[1].Events != 1 || !r.Parts[2].Duplicate {
		t.Fatalf("out of order: %s", render(r))
	}
	if got, want := totals(t, f), `{"records":[["a",115]]}`; got != want {
		t.Fatalf("totals = %s, want %s", got, want)
	}
	// Too old: more than DedupWindow below the highest.
	next(batch(t0+4, part("S", "p", 3+DedupWindow+2, ev("b", 1)))) // window now 5 ... 1029
	r = next(batch(t0+5, part("S", "p", 4, ev("b", 1000)), part("S", "p", 5, ev("b", 1))))
	if !errors.Is(r.Parts[0].Err, ErrSeqTooOld) || r.Parts[0].Events != 0 || r.Parts[1].Err != nil {
		t.Fatalf("too old: %s", render(r))
	}
	// Producers without an ID are never deduplicated.
	next(batch(t0+6, part("S", "", 1, ev("c", 1)), part("S", "", 1, ev("c", 1))))
	if got, want := totals(t, f), `{"records":[["a",115],["b",2],["c",2]]}`; got != want {
		t.Fatalf("totals = %s, want %s", got, want)
	}

	// Dedup survives snapshot and restore.
	g := newFSM(t, DefaultConfig())
	if err := restore(t, g, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	r = mustApply(t, g, idx+1, batch(t0+7, part("S", "p", 3+DedupWindow+2, ev("a", 5)), part("S", "p", 5, ev("a", 5)), part("S", "p", 4, ev("a", 5)), part("S", "p", 6, ev("a", 5))))
	if !r.Parts[0].Duplicate || !r.Parts[1].Duplicate || !errors.Is(r.Parts[2].Err, ErrSeqTooOld) || r.Parts[3].Events != 1 {
		t.Fatalf("after restore: %s", render(r))
	}
	st := f.Stats()
	if st.Duplicates != 2 || st.Failed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestDedupEvictionDeterministic: eviction at MaxProducers depends only on the log, not on
// part order within an entry, and is the same after a snapshot and restore.
func TestDedupEvictionDeterministic(t *testing.T) {
	cfg := Config{MaxProducers: 2, ProducerTTL: 1}
	deploy := Command{Kind: KindDeploy, Time: t0, Text: testApp}
	// Entry 2 records p2 and p1 at the same index (in two orders); entry 3 adds p3 after
	// both expired, which must evict p1 (same index as p2, smaller id).
	orders := [][]Part{
		{part("S", "p2", 1, ev("a", 1)), part("S", "p1", 1, ev("a", 1))},
		{part("S", "p1", 1, ev("a", 1)), part("S", "p2", 1, ev("a", 1))},
	}
	var states [][]byte
	for _, parts := range orders {
		f := newFSM(t, cfg)
		apply(t, f, logOf(t, 1, deploy, batch(t0+1, parts...)))
		snap := snapshotBytes(t, f)
		restored := newFSM(t, cfg)
		if err := restore(t, restored, snap); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*FSM{f, restored} {
			r := mustApply(t, x, 3, batch(t0+5, part("S", "p3", 1, ev("a", 1))))
			if r.Parts[0].Events != 1 {
				t.Fatal(render(r))
			}
			r = mustApply(t, x, 4, batch(t0+3, part("S", "p2", 1, ev("a", 1))))
			if !r.Parts[0].Duplicate {
				t.Errorf("p2 was evicted: %s", render(r))
			}
			r = mustApply(t, x, 5, batch(t0+3, part("S", "p1", 1, ev("a", 1))))
			if r.Parts[0].Duplicate || r.Parts[0].Events != 1 {
				t.Errorf("p1 was not evicted: %s", render(r))
			}
			states = append(states, state(t, x))
		}
		if f.Stats().Evicted != 2 {
			t.Errorf("Evicted = %d, want 2", f.Stats().Evicted)
		}
	}
	// Both orders put identical rows into the window, so every FSM must end in the same
	// state, restored or not.
	for i := 1; i < len(states); i++ {
		if !bytes.Equal(states[i], states[0]) {
			t.Errorf("FSM %d ended in a different state", i)
		}
	}
}

// seenCount is the number of seqs remembered for id (for tests).
func (d *dedup) seenCount(id string) int {
	p, ok := d.byID[id]
	if !ok {
		return 0
	}
	n := 1
	for _, x := range p.seen {
		n += bits.OnesCount64(x)
	}
	return n
}
