package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestDedupFloodKeepsLiveProducers: a flood of new producer IDs cannot push out a producer
// that applied within ProducerTTL. New producers are refused at check time while the table
// is full of live ones, and a part already in the log is refused alike at apply (after a
// snapshot and restore too); once the oldest producer expired, a new one takes its place.
func TestDedupFloodKeepsLiveProducers(t *testing.T) {
	const ttl = 60_000
	cfg := Config{MaxProducers: 4, ProducerTTL: ttl}
	f := newFSM(t, cfg)
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	for i := range 4 {
		r := mustApply(t, f, uint64(2+i), batch(t0+int64(i), part("S", fmt.Sprintf("live%d", i), 1, ev("a", 1))))
		if r.Parts[0].Err != nil {
			t.Fatal(render(r))
		}
	}
	flood := make([]Part, 100)
	for i := range flood {
		flood[i] = part("S", fmt.Sprintf("flood%03d", i), 1, ev("a", 1))
	}
	errs := f.CheckBatch(flood)
	for i, err := range errs {
		if !errors.Is(err, ErrTooManyProducers) {
			t.Fatalf("CheckBatch part %d: %v, want ErrTooManyProducers", i, err)
		}
	}
	if errs == nil {
		t.Fatal("CheckBatch admitted a flood into a full table of live producers")
	}
	// The same flood, already in the log, is refused on every replica alike.
	g := newFSM(t, cfg)
	if err := restore(t, g, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*FSM{f, g} {
		r := mustApply(t, x, 6, batch(t0+ttl, flood...))
		for i, p := range r.Parts {
			if !errors.Is(p.Err, ErrTooManyProducers) {
				t.Fatalf("apply part %d: %s", i, render(r))
			}
		}
		r = mustApply(t, x, 7, batch(t0+ttl+1, part("S", "live0", 1, ev("a", 1))))
		if !r.Parts[0].Duplicate {
			t.Fatalf("live0's retry after the flood: %s, want a duplicate", render(r))
		}
	}
	if !bytes.Equal(state(t, f), state(t, g)) {
		t.Fatal("the restored replica's state differs")
	}
	// live0 applied at t0; it is live through t0+ttl and expired after: a new producer
	// replaces it. (Duplicates do not move the engine's clock; the leader's ticks do.)
	mustApply(t, f, 8, Command{Kind: KindTick, Time: t0 + ttl + 1})
	if errs := f.CheckBatch(flood[:1]); errs != nil {
		t.Fatalf("after live0 expired, CheckBatch: %v", errs[0])
	}
	if errs := f.CheckBatch(flood[:2]); errs == nil || errs[0] != nil || !errors.Is(errs[1], ErrTooManyProducers) {
		t.Fatalf("one place, two new producers: %v, want the second refused", errs)
	}
	r := mustApply(t, f, 9, batch(t0+ttl+1, flood[0]))
	if r.Parts[0].Events != 1 || f.Stats().Evicted != 1 {
		t.Fatalf("after live0 expired: %s, evicted %d", render(r), f.Stats().Evicted)
	}
	r = mustApply(t, f, 10, batch(t0+ttl+1, part("S", "live1", 1, ev("a", 1))))
	if !r.Parts[0].Duplicate {
		t.Fatalf("live1 (still live) was forgotten: %s", render(r))
	}
}

// TestSnapshotV1Restores: a version-1 snapshot (no producer times, written by the previous
// release) restores, its producers count as applied at the snapshot's time, and it
// re-encodes as version 2.
func TestSnapshotV1Restores(t *testing.T) {
	v1, err := os.ReadFile("testdata/snapshot-v1.golden")
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 60_000
	f := newFSM(t, Config{MaxProducers: 3, ProducerTTL: ttl})
	if err := restore(t, f, v1); err != nil {
		t.Fatal(err)
	}
	r := mustApply(t, f, 4, batch(t0+3000, part("S", "p1", 1, ev("a", 1)), part("S", "p2", 7, ev("a", 1)), part("S", "p3", 2, ev("a", 1))))
	for i, p := range r.Parts {
		if !p.Duplicate {
			t.Fatalf("part %d after a v1 restore: %s, want a duplicate", i, render(r))
		}
	}
	if errs := f.CheckBatch([]Part{part("S", "p4", 1, ev("a", 1))}); errs == nil || !errors.Is(errs[0], ErrTooManyProducers) {
		t.Fatalf("new producer while the restored ones are live: %v", errs)
	}
	// The restored engine's time is t0+2000: past it plus the TTL, p1 (smallest index) goes.
	r = mustApply(t, f, 5, batch(t0+2000+ttl+1, part("S", "p4", 1, ev("a", 1))))
	if r.Parts[0].Events != 1 {
		t.Fatal(render(r))
	}
	r = mustApply(t, f, 6, batch(t0+2000+ttl+1, part("S", "p1", 1, ev("a", 1)), part("S", "p3", 2, ev("a", 1))))
	// p2 (index 2, like p1) expired too and makes room for p1 again; p3 is still known.
	if r.Parts[0].Events != 1 || !r.Parts[1].Duplicate {
		t.Fatalf("after expiry: %s, want p1 forgotten and applied, p3 kept", render(r))
	}
	snap := snapshotBytes(t, f)
	if snap[len(SnapshotMagic)] != SnapshotVersion {
		t.Fatalf("re-encoded as version %d", snap[len(SnapshotMagic)])
	}
	g := newFSM(t, Config{MaxProducers: 3, ProducerTTL: ttl})
	if err := restore(t, g, snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state(t, f), state(t, g)) {
		t.Fatal("version 2 round trip changed the state")
	}
}
