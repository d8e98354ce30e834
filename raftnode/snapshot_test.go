package raftnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestNode_SnapshotAndRestart, on each Raft log store: a follower stopped after a snapshot
// and restarted restores it, replays the log after it, catches up on what it missed and
// keeps its dedup state.
func TestNode_SnapshotAndRestart(t *testing.T) {
	for _, store := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(store, func(t *testing.T) { testSnapshotAndRestart(t, store) })
	}
}

func testSnapshotAndRestart(t *testing.T, store string) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.LogStore = store })
	for i, cfg := range c.cfgs {
		if kind, err := existingLogStore(cfg.DataDir); kind != store || err != nil {
			t.Fatalf("node %d's data dir holds a %q log (%v), want %s", i, kind, err, store)
		}
		if got := c.node(i).Status().LogStore; got != store {
			t.Fatalf("node %d's status says log store %q, want %s", i, got, store)
		}
	}
	c.deploy()
	leader := c.waitLeader(testTimeout)

	var last uint64
	for i := range 20 {
		last = ingest(t, leader, "p", uint64(i+1), row("a", 1)).Index
	}
	c.waitApplied(last)
	for _, n := range c.live() {
		if err := n.Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", n.ID(), err)
		}
	}
	for i := range 10 {
		last = ingest(t, leader, "p", uint64(i+21), row("b", 2)).Index
	}
	f := c.others(leader)[0]
	fi := c.indexOf(f)
	c.waitApplied(last)
	c.stop(fi)

	// Writes while it is down, which it must catch up on.
	for i := range 10 {
		last = ingest(t, leader, "p", uint64(i+31), row("c", 3)).Index
	}
	re := c.restart(fi)
	if st := re.FSM().Stats(); st.Restores != 1 {
		t.Errorf("reopened node restored %d snapshots, want 1 (from its own snapshot)", st.Restores)
	}
	want := map[string]keyAgg{"a": {20, 20}, "b": {20, 10}, "c": {30, 10}}
	if got := totals(t, re, Stale, last); render(got) != render(want) {
		t.Errorf("reopened node: %s, want %s", render(got), render(want))
	}
	// Dedup survived the restart: a retried seq is a duplicate on the group.
	if res := ingest(t, c.waitLeader(testTimeout), "p", 5, row("a", 1)); !res.Parts[0].Duplicate {
		t.Errorf("seq 5 after restart: %+v, want duplicate", res.Parts[0])
	}
	sameHash(t, re, c.waitLeader(testTimeout))
}

// TestNode_SnapshotInstall, on each log store: a node joining after the leader compacted
// its log catches up through InstallSnapshot. (raft-wal deletes whole segments only, so its
// segments are made small enough for the compaction to delete some.)
func TestNode_SnapshotInstall(t *testing.T) {
	for _, store := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(store, func(t *testing.T) { testSnapshotInstall(t, store) })
	}
}

func testSnapshotInstall(t *testing.T, store string) {
	small := func(c *Config) {
		c.SnapshotThreshold = 16
		c.TrailingLogs = 4
		c.LogStore, c.WALSegmentBytes = store, MinWALSegmentBytes
	}
	c := newCluster(t, 3, small)
	c.deploy()
	leader := c.waitLeader(testTimeout)

	var last uint64
	for i := range 60 {
		last = ingest(t, leader, fmt.Sprint("p", i%3), uint64(i), row(fmt.Sprint("k", i%5), int64(i))).Index
	}
	c.waitApplied(last)
	if err := leader.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	first, err := leader.logStore.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Fatalf("log not compacted: first index %d", first)
	}
	t.Logf("leader's log starts at %d after the snapshot (last %d)", first, last)

	i := c.add(false, small)
	c.join(leader, i)
	nd := c.node(i)
	c.waitMembers(4)
	sameHash(t, nd, leader)
	if st := nd.FSM().Stats(); st.Restores < 1 {
		t.Errorf("new node restored %d snapshots: it did not catch up through InstallSnapshot", st.Restores)
	}
	if got, want := totals(t, nd, Stale, last), totals(t, leader, Linearizable, 0); render(got) != render(want) {
		t.Errorf("new node: %s, leader: %s", render(got), render(want))
	}
	// It keeps following after the install.
	res := ingest(t, leader, "p0", 1000, row("k0", 1))
	if err := nd.WaitApplied(t.Context(), res.Index); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(testTimeout)
}

func TestNode_ReplicasConverge(t *testing.T) {
	c := newCluster(t, 3)
	c.deploy()
	leader := c.waitLeader(testTimeout)

	const clients, perClient = 8, 25
	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			for s := range perClient {
				ingest(t, leader, fmt.Sprint("p", g), uint64(s+1), row(fmt.Sprint("k", (g+s)%7), int64(g*s)), row("all", 1))
			}
		})
	}
	wg.Wait()
	idx := c.waitConverged(testTimeout) // byte-identical State() at the same applied index
	ns := c.live()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for _, n := range ns {
		got, err := tryTotals(ctx, n, Stale, idx)
		if err != nil {
			t.Fatal(err)
		}
		if got["all"] != (keyAgg{clients * perClient, clients * perClient}) {
			t.Errorf("%s: all=%+v, want %d events counted once", n.ID(), got["all"], clients*perClient)
		}
	}
	// The leader applied the commands it proposed without decoding them, the followers
	// decoded theirs, and the states above are byte-identical all the same.
	var proposed uint64
	for _, n := range ns {
		proposed += n.FSM().Stats().Proposed
	}
	if proposed == 0 {
		t.Error("no replica applied an entry from the command it proposed")
	}
}

// sameHash waits until a and b have applied the same index and report the same StateHash
// there (ticks keep moving both, so it polls).
func sameHash(t *testing.T, a, b *Node) {
	t.Helper()
	eventually(t, testTimeout, func() bool {
		ia := a.FSM().AppliedIndex()
		ha, hb := a.FSM().StateHash(), b.FSM().StateHash()
		return ha != "" && ha == hb && ia == b.FSM().AppliedIndex() && ia == a.FSM().AppliedIndex()
	}, "%s and %s reach the same StateHash at the same applied index", a.ID(), b.ID())
}
