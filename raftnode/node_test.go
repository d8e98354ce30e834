package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
)

// noTicks keeps the leader from appending ticks, for tests that count log entries.
func noTicks(c *Config) { c.TickInterval = time.Hour }

func TestNode_BootstrapAndJoin(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader(testTimeout)

	for _, n := range c.live() {
		st := n.Status()
		ids := make([]string, 0, len(st.Members))
		for _, m := range st.Members {
			if !m.Voter {
				t.Errorf("%s: member %s is not a voter", n.ID(), m.ID)
			}
			if m.RaftAddr != m.ID { // the harness uses the ID as in-memory address
				t.Errorf("%s: member %s has address %s", n.ID(), m.ID, m.RaftAddr)
			}
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"n0", "n1", "n2"}) {
			t.Errorf("%s: members %v", n.ID(), ids)
		}
		if st.LeaderID != leader.ID() {
			t.Errorf("%s: leader %q, want %q", n.ID(), st.LeaderID, leader.ID())
		}
		wantRole := "follower"
		if n == leader {
			wantRole = "leader"
		}
		if st.Role != wantRole {
			t.Errorf("%s: role %q, want %q", n.ID(), st.Role, wantRole)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	t.Run("same id and address twice", func(t *testing.T) {
		before := leader.Status().LastIndex
		if err := leader.Join(ctx, "n1", "n1"); err != nil {
			t.Fatalf("rejoin n1: %v", err)
		}
		if err := leader.Join(ctx, "n1", "n1"); err != nil {
			t.Fatalf("rejoin n1 again: %v", err)
		}
		if got := len(leader.Status().Members); got != 3 {
			t.Errorf("%d members after rejoins, want 3", got)
		}
		// An idempotent join appends no configuration entry (ticks may append commands).
		if after := leader.Status().LastIndex; after > before+2 {
			t.Errorf("last index went from %d to %d on idempotent joins", before, after)
		}
	})
	t.Run("other id with an existing address", func(t *testing.T) {
		err := leader.Join(ctx, "intruder", "n2")
		if err == nil {
			t.Fatal("joining a new id at n2's address succeeded")
		}
		if got := len(leader.Status().Members); got != 3 {
			t.Errorf("%d members after a refused join, want 3", got)
		}
	})
	t.Run("missing id or address", func(t *testing.T) {
		if err := leader.Join(ctx, "", "x"); err == nil {
			t.Error("join without id succeeded")
		}
		if err := leader.Join(ctx, "x", ""); err == nil {
			t.Error("join without address succeeded")
		}
	})
	t.Run("on a follower", func(t *testing.T) {
		f := c.others(leader)[0]
		if err := f.Join(ctx, "n9", "n9"); !errors.Is(err, ErrNotLeader) {
			t.Errorf("join on follower: %v, want ErrNotLeader", err)
		}
		if err := f.Remove(ctx, "n1"); !errors.Is(err, ErrNotLeader) {
			t.Errorf("remove on follower: %v, want ErrNotLeader", err)
		}
	})
	t.Run("remove unknown id", func(t *testing.T) {
		if err := leader.Remove(ctx, "nobody"); err != nil {
			t.Errorf("remove unknown id: %v", err)
		}
	})
}

func TestNode_Deploy(t *testing.T) {
	c := newCluster(t, 3, noTicks)
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	name, idx, err := leader.Deploy(ctx, testApp)
	if err != nil || name != "T" || idx == 0 {
		t.Fatalf("deploy: %q %d %v", name, idx, err)
	}
	c.waitApplied(idx)
	for _, n := range c.live() {
		var ok bool
		n.FSM().Read(func(e fsm.View) { _, ok = e.Stream("S") })
		if !ok {
			t.Errorf("%s: stream S not deployed", n.ID())
		}
	}

	t.Run("invalid text appends nothing", func(t *testing.T) {
		before := leader.Status().LastIndex
		for _, text := range []string{
			"define stream",                // syntax error
			"define stream S2 (k string);", // no app name
			"@app:name('X') define stream S2 (k string); from Nope select k insert into O;", // unknown input
		} {
			if _, _, err := leader.Deploy(ctx, text); err == nil {
				t.Errorf("deploy %q succeeded", text)
			}
		}
		if after := leader.Status().LastIndex; after != before {
			t.Errorf("last index %d → %d after refused deploys", before, after)
		}
	})
	t.Run("conflicting app fails at apply and changes nothing", func(t *testing.T) {
		// Stream S belongs to app T: the text is valid alone, so only the replicated
		// state can refuse it. It reaches the log and fails on every replica alike.
		_, idx, err := leader.Deploy(ctx, "@app:name('X') define stream S (k int);")
		if !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("deploy of a conflicting app: %v, want ErrConflict", err)
		}
		c.waitApplied(idx)
		for _, n := range c.live() {
			var x bool
			n.FSM().Read(func(e fsm.View) { _, x = e.App("X") })
			if x {
				t.Errorf("%s: conflicting app X deployed", n.ID())
			}
		}
	})
	t.Run("on a follower", func(t *testing.T) {
		if _, _, err := c.others(leader)[0].Deploy(ctx, testApp); !errors.Is(err, ErrNotLeader) {
			t.Errorf("deploy on follower: %v, want ErrNotLeader", err)
		}
	})
	t.Run("undeploy", func(t *testing.T) {
		idx, err := leader.Undeploy(ctx, "T")
		if err != nil {
			t.Fatalf("undeploy: %v", err)
		}
		c.waitApplied(idx)
		for _, n := range c.live() {
			var ok bool
			n.FSM().Read(func(e fsm.View) { _, ok = e.Stream("S") })
			if ok {
				t.Errorf("%s: stream S still deployed", n.ID())
			}
		}
		if _, err := leader.Undeploy(ctx, "T"); !errors.Is(err, engine.ErrUnknownApp) {
			t.Errorf("second undeploy: %v, want ErrUnknownApp", err)
		}
	})
}

func TestNode_IngestReplicates(t *testing.T) {
	c := newCluster(t, 3)
	c.deploy()
	leader := c.waitLeader(testTimeout)
	follower := c.others(leader)[0]

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, err := follower.Ingest(ctx, []fsm.Part{part("", 0, row("a", 1))}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("ingest on follower: %v, want ErrNotLeader", err)
	}

	var last uint64
	for i := range 10 {
		res := ingest(t, leader, "", 0, row("a", int64(i)), row("b", 100))
		if res.Parts[0].Events != 2 {
			t.Fatalf("part applied %d events, want 2", res.Parts[0].Events)
		}
		if res.Index <= last {
			t.Fatalf("index %d after %d", res.Index, last)
		}
		last = res.Index
	}
	want := map[string]keyAgg{"a": {45, 10}, "b": {1000, 10}}
	for _, n := range c.live() {
		// Read-your-writes on any replica: a stale read at the write's index.
		if got := totals(t, n, Stale, last); render(got) != render(want) {
			t.Errorf("%s stale read at %d: %s, want %s", n.ID(), last, render(got), render(want))
		}
	}
	if got := totals(t, leader, Linearizable, 0); render(got) != render(want) {
		t.Errorf("linearizable read: %s, want %s", render(got), render(want))
	}
}

func TestNode_GroupCommit(t *testing.T) {
	c := newCluster(t, 3, noTicks)
	c.deploy()
	leader := c.waitLeader(testTimeout)

	const clients = 64
	before := leader.Status().LastIndex
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]*IngestResult, clients)
	errs := make([]error, clients)
	for i := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			<-start
			results[i], errs[i] = leader.Ingest(ctx, []fsm.Part{part(fmt.Sprintf("p%d", i), 1, row("k", int64(i)))})
		})
	}
	close(start)
	wg.Wait()

	indexes := map[uint64]int{}
	var maxIndex uint64
	for i := range clients {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		if p := results[i].Parts; len(p) != 1 || p[0].Err != nil || p[0].Duplicate || p[0].Events != 1 {
			t.Fatalf("client %d: %+v", i, p)
		}
		indexes[results[i].Index]++
		maxIndex = max(maxIndex, results[i].Index)
	}
	after := leader.Status().LastIndex
	t.Logf("%d requests became %d entries (log %d → %d); requests per entry: %v", clients, len(indexes), before, after, indexes)
	if grown := after - before; grown >= clients {
		t.Errorf("log grew by %d entries for %d requests: no group commit", grown, clients)
	}
	if len(indexes) >= clients {
		t.Errorf("%d distinct indexes for %d requests", len(indexes), clients)
	}
	want := map[string]keyAgg{"k": {clients * (clients - 1) / 2, clients}}
	for _, n := range c.live() {
		if got := totals(t, n, Stale, maxIndex); render(got) != render(want) {
			t.Errorf("%s: %s, want %s", n.ID(), render(got), render(want))
		}
	}
}

func TestNode_Dedup(t *testing.T) {
	c := newCluster(t, 3)
	c.deploy()
	leader := c.waitLeader(testTimeout)

	first := ingest(t, leader, "prod", 7, row("a", 5))
	if first.Parts[0].Duplicate || first.Parts[0].Events != 1 {
		t.Fatalf("first ingest: %+v", first.Parts[0])
	}
	second := ingest(t, leader, "prod", 7, row("a", 5))
	if !second.Parts[0].Duplicate || second.Parts[0].Events != 0 {
		t.Fatalf("second ingest of the same seq: %+v, want Duplicate", second.Parts[0])
	}
	// The same seq twice within one request: the second part is the duplicate.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	res, err := leader.Ingest(ctx, []fsm.Part{part("prod", 8, row("a", 1)), part("prod", 8, row("a", 1))})
	if err != nil {
		t.Fatal(err)
	}
	if res.Parts[0].Duplicate || res.Parts[0].Events != 1 || !res.Parts[1].Duplicate {
		t.Fatalf("same seq twice in one request: %+v", res.Parts)
	}
	// Another producer's seq 7 is its own.
	other := ingest(t, leader, "other", 7, row("a", 100))
	if other.Parts[0].Duplicate {
		t.Fatalf("other producer's seq 7 reported duplicate")
	}
	want := map[string]keyAgg{"a": {106, 3}}
	for _, n := range c.live() {
		if got := totals(t, n, Stale, other.Index); render(got) != render(want) {
			t.Errorf("%s: %s, want %s", n.ID(), render(got), render(want))
		}
	}
}

func TestNode_BadPartsRefused(t *testing.T) {
	c := newCluster(t, 3)
	c.deploy()
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	parts := []fsm.Part{
		part("", 0, row("good", 1)),
		{Stream: "Nope", ProducerID: "bad", Seq: 1, Events: []expr.Row{row("x", 1)}},                            // unknown stream
		{Stream: "S", ProducerID: "bad", Seq: 2, Events: []expr.Row{{expr.String("x")}}},                        // too narrow
		{Stream: "S", ProducerID: "bad", Seq: 3, Events: []expr.Row{row("x", 1), {expr.Long(1), expr.Long(2)}}}, // wrong type in event 1
		part("good", 1, row("good", 10)),
	}
	res, err := leader.Ingest(ctx, parts)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	if len(res.Parts) != len(parts) {
		t.Fatalf("%d part results for %d parts", len(res.Parts), len(parts))
	}
	wantErr := []error{nil, engine.ErrUnknownStream, engine.ErrBadEvent, engine.ErrBadEvent, nil}
	for i, pr := range res.Parts {
		switch {
		case wantErr[i] == nil && (pr.Err != nil || pr.Events != 1):
			t.Errorf("part %d: %+v, want applied", i, pr)
		case wantErr[i] != nil && (!errors.Is(pr.Err, wantErr[i]) || pr.Events != 0 || pr.Duplicate):
			t.Errorf("part %d: %+v, want error %v", i, pr, wantErr[i])
		}
	}
	want := map[string]keyAgg{"good": {11, 2}}
	for _, n := range c.live() {
		if got := totals(t, n, Stale, res.Index); render(got) != render(want) {
			t.Errorf("%s: %s, want %s", n.ID(), render(got), render(want))
		}
	}
	// A refused part records no seq: the corrected retry with the same seq applies.
	fixed := ingest(t, leader, "bad", 2, row("x", 7))
	if fixed.Parts[0].Duplicate || fixed.Parts[0].Events != 1 {
		t.Fatalf("corrected retry of a refused seq: %+v", fixed.Parts[0])
	}
	if got := totals(t, leader, Linearizable, fixed.Index)["x"]; got != (keyAgg{7, 1}) {
		t.Errorf("x after corrected retry: %+v, want 7/1", got)
	}
}

func TestNode_Reads(t *testing.T) {
	c := newCluster(t, 3)
	c.deploy()
	leader := c.waitLeader(testTimeout)
	follower := c.others(leader)[0]
	fi := c.indexOf(follower)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, err := tryTotals(ctx, follower, Linearizable, 0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("linearizable read on follower: %v, want ErrNotLeader", err)
	}

	// Cut the follower off: the other two still commit, but it cannot apply.
	c.isolate(fi)
	res := ingest(t, leader, "", 0, row("a", 3))
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := tryTotals(short, follower, Stale, res.Index)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stale read at %d on the isolated follower: %v, want it to wait until the deadline", res.Index, err)
	}

	type reply struct {
		m   map[string]keyAgg
		err error
	}
	done := make(chan reply, 1)
	go func() {
		m, err := tryTotals(ctx, follower, Stale, res.Index)
		done <- reply{m, err}
	}()
	c.heal()
	r := <-done
	if r.err != nil {
		t.Fatalf("stale read at %d after healing: %v", res.Index, r.err)
	}
	if got := r.m["a"]; got != (keyAgg{3, 1}) {
		t.Errorf("follower read a=%+v, want 3/1", got)
	}
	if got := follower.FSM().AppliedIndex(); got < res.Index {
		t.Errorf("read returned with applied index %d < %d", got, res.Index)
	}
}

func TestParseConsistency(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Consistency
		ok   bool
	}{
		{"", Linearizable, true}, {"linearizable", Linearizable, true}, {"strong", Linearizable, true},
		{"stale", Stale, true}, {"none", Stale, true}, {"weak", 0, false},
	} {
		got, err := ParseConsistency(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseConsistency(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// A linearizable read must not wait for a command entry that nobody appends: after an
// election or a membership change the last committed entries are raft's own (no-op, barrier,
// configuration), which the FSM never sees.
func TestNode_LinearizableReadWithoutCommands(t *testing.T) {
	c := newCluster(t, 3, noTicks)
	c.deploy()
	first := c.waitLeader(testTimeout)
	c.stop(c.indexOf(first)) // hands leadership over: the new leader commits a no-op and a barrier
	leader := c.waitLeader(testTimeout)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	t.Logf("new leader %s: %+v", leader.ID(), leader.Status())
	start := time.Now()
	got, err := tryTotals(ctx, leader, Linearizable, 0)
	if err != nil {
		t.Fatalf("linearizable read on the new leader %s (commit %d, applied %d): %v",
			leader.ID(), leader.Status().CommitIndex, leader.FSM().AppliedIndex(), err)
	}
	t.Logf("first linearizable read on the new leader took %s", time.Since(start))
	if len(got) != 0 {
		t.Errorf("totals %s, want none", render(got))
	}

	// A join appends a configuration entry: reads must still be served.
	c.join(leader, c.add(false, noTicks))
	c.waitMembers(4)
	t.Logf("after join %s: %+v", leader.ID(), leader.Status())
	if _, err := tryTotals(ctx, leader, Linearizable, 0); err != nil {
		t.Fatalf("linearizable read after a join: %v", err)
	}
	eventually(t, 3*time.Second, leader.Ready, "leader %s ready", leader.ID())
}
