package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
)

// workloads has, per command kind, a log that exercises it (after a deploy where the kind
// needs an app), plus a mixed one.
func workloads() map[string][]Command {
	deploy := Command{Kind: KindDeploy, Time: t0, Text: testApp}
	return map[string][]Command{
		"batch": {
			deploy,
			batch(t0+100, part("S", "p1", 1, ev("a", 1), ev("b", 2)), part("S", "", 0, ev("a", 10))),
			batch(t0+200, part("S", "p1", 1, ev("a", 1000))), // duplicate
			batch(t0+300, part("S", "p2", 5, ev("c", 3)), part("S", "p1", 3, ev("a", 4)), part("S", "p1", 2, ev("b", 5))),
			batch(t0+1500, part("Nope", "p3", 1, ev("a", 1)), part("S", "p3", 1, expr.Row{expr.Long(1), expr.Long(2)}), part("S", "p3", 1, ev("d", 6))),
			batch(t0+1400, part("S", "p1", 2000, ev("a", 7))), // older stamp: counts as now
			batch(t0+1600, part("S", "p1", 100, ev("a", 1))),  // too old
			batch(t0+2500, part("S", "p2", 6, ev("c", 1), ev("c", 2), ev("e", 3))),
		},
		"tick": {
			deploy,
			batch(t0+100, part("S", "p1", 1, ev("a", 1))),
			{Kind: KindTick, Time: t0 + 1000},
			{Kind: KindTick, Time: t0 + 900},
			batch(t0+61_000, part("S", "p1", 2, ev("a", 2))),
			{Kind: KindTick, Time: t0 + 3_600_000},
			{Kind: KindTick, Time: t0 + 86_400_000},
		},
		"deploy": {
			deploy,
			{Kind: KindDeploy, Time: t0, Text: "define stream X (a int);"},            // no name
			{Kind: KindDeploy, Time: t0, Text: "@app:name('Bad') define stream S (;"}, // parse error
			{Kind: KindDeploy, Time: t0 + 10, Text: otherApp},
			batch(t0+20, part("U1", "", 0, expr.Row{expr.String("x"), expr.Int(1)}), part("S", "", 0, ev("a", 1))),
			{Kind: KindDeploy, Time: t0 + 30, Text: otherApp}, // replace: state dropped
			batch(t0+40, part("U1", "", 0, expr.Row{expr.String("y"), expr.Int(2)})),
		},
		"undeploy": {
			deploy,
			{Kind: KindDeploy, Time: t0, Text: otherApp},
			batch(t0+20, part("U1", "q", 1, expr.Row{expr.String("x"), expr.Int(1)})),
			{Kind: KindUndeploy, Time: t0 + 30, Text: "U"},
			{Kind: KindUndeploy, Time: t0 + 40, Text: "U"}, // unknown now
			batch(t0+50, part("U1", "q", 2, expr.Row{expr.String("x"), expr.Int(1)})),
			batch(t0+60, part("S", "q", 2, ev("a", 1))),
		},
		"flushed": {
			deploy,
			batch(t0+100, part("S", "", 0, ev("a", 1), ev("b", 2))),
			batch(t0+1100, part("S", "", 0, ev("a", 3))),
			{Kind: KindFlushed, Time: t0 + 1200, Index: 2},
			{Kind: KindTick, Time: t0 + 120_000},
			{Kind: KindFlushed, Time: t0 + 120_000, Index: 3},
			batch(t0+120_100, part("S", "", 0, ev("a", 4))),
			{Kind: KindFlushed, Time: t0 + 120_200, Index: 100},
		},
		"shard": {
			deploy,
			{Kind: KindShard, Time: t0, Text: "wso2-si-1"},
			batch(t0+100, part("S", "", 0, ev("a", 1))),
			{Kind: KindShard, Time: t0 + 200, Text: "wso2-si-1"}, // the same again: fine
			{Kind: KindShard, Time: t0 + 300, Text: "other"},     // refused
			{Kind: KindFlushed, Time: t0 + 400, Index: 3},
		},
		"mixed": mixedWorkload(60),
	}
}

// TestShardID: a group's shard ID is set once; another one is refused; both the shard ID and
// the flushed index survive a snapshot.
func TestShardID(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	if res := mustApply(t, f, 1, Command{Kind: KindShard, Text: ""}); !errors.Is(res.Err, ErrShardMismatch) {
		t.Errorf("empty shard ID: err = %v", res.Err)
	}
	if res := mustApply(t, f, 2, Command{Kind: KindShard, Text: "s1"}); res.Err != nil {
		t.Fatalf("set shard: %v", res.Err)
	}
	if res := mustApply(t, f, 3, Command{Kind: KindShard, Text: "s2"}); !errors.Is(res.Err, ErrShardMismatch) || !strings.Contains(res.Err.Error(), `"s1"`) {
		t.Errorf("second shard ID: err = %v", res.Err)
	}
	mustApply(t, f, 4, Command{Kind: KindFlushed, Index: 3})
	mustApply(t, f, 5, Command{Kind: KindFlushed, Index: 2}) // never goes back
	if shard, flushed := f.ShardID(); shard != "s1" || flushed != 3 {
		t.Errorf("ShardID() = %q, %d; want s1, 3", shard, flushed)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM(t, DefaultConfig())
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if shard, flushed := g.ShardID(); shard != "s1" || flushed != 3 {
		t.Errorf("after restore ShardID() = %q, %d; want s1, 3", shard, flushed)
	}
}

// mixedWorkload makes n entries of every kind with a deterministic pattern.
func mixedWorkload(n int) []Command {
	cmds := []Command{{Kind: KindDeploy, Time: t0, Text: testApp}}
	now := t0
	for i := range n {
		now += int64(137 * (i%11 + 1))
		switch {
		case i%13 == 12:
			cmds = append(cmds, Command{Kind: KindFlushed, Time: now, Index: uint64(len(cmds) - 5)})
		case i%7 == 6:
			cmds = append(cmds, Command{Kind: KindTick, Time: now + 2000})
		case i == 20:
			cmds = append(cmds, Command{Kind: KindDeploy, Time: now, Text: otherApp})
		case i == 40:
			cmds = append(cmds, Command{Kind: KindUndeploy, Time: now, Text: "U"})
		default:
			var parts []Part
			for j := range i%4 + 1 {
				prod := fmt.Sprintf("p%d", (i+j)%5)
				seq := uint64(i - j%2) // some repeat: duplicates
				parts = append(parts, part("S", prod, seq, ev(fmt.Sprintf("k%d", (i*j)%6), int64(i+j)), ev("z", int64(j))))
			}
			cmds = append(cmds, batch(now, parts...))
		}
	}
	return cmds
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestDeterminism: per kind, two fresh FSMs fed the same log hold identical state, and
// applying N entries, snapshotting, restoring into a fresh FSM and applying the rest gives
// the same results and state as applying everything.
func TestDeterminism(t *testing.T) {
	ws := workloads()
	for _, name := range sortedKeys(ws) {
		t.Run(name, func(t *testing.T) {
			cmds := ws[name]
			logs := logOf(t, 1, cmds...)
			cfg := Config{GroupID: 7, MaxProducers: 3}
			a, b := newFSM(t, cfg), newFSM(t, cfg)
			wantRes := apply(t, a, logs)
			if got := apply(t, b, logs); !slices.Equal(got, wantRes) {
				t.Fatalf("two FSMs gave different results:\n%s\n%s", strings.Join(got, "\n"), strings.Join(wantRes, "\n"))
			}
			want := state(t, a)
			if !bytes.Equal(state(t, b), want) {
				t.Fatal("two FSMs fed the same log hold different state")
			}
			if a.StateHash() != b.StateHash() || len(a.StateHash()) != 64 {
				t.Fatalf("state hashes %q and %q", a.StateHash(), b.StateHash())
			}
			if a.AppliedIndex() != uint64(len(logs)) {
				t.Fatalf("AppliedIndex = %d, want %d", a.AppliedIndex(), len(logs))
			}
			for n := 0; n <= len(logs); n++ {
				first := newFSM(t, cfg)
				got := apply(t, first, logs[:n])
				snap := snapshotBytes(t, first)
				second := newFSM(t, cfg)
				if err := restore(t, second, snap); err != nil {
					t.Fatalf("restore after %d: %v", n, err)
				}
				if !bytes.Equal(state(t, second), state(t, first)) {
					t.Fatalf("restored state after %d entries differs from the snapshotted FSM's", n)
				}
				got = append(got, apply(t, second, logs[n:])...)
				if !slices.Equal(got, wantRes) {
					for i := range got {
						if got[i] != wantRes[i] {
							t.Fatalf("snapshot after %d: entry %d gave\n%s\nwant\n%s", n, i+1, got[i], wantRes[i])
						}
					}
				}
				if !bytes.Equal(state(t, second), want) {
					t.Fatalf("snapshot after %d entries, restore, rest: state differs from applying all", n)
				}
			}
		})
	}
}

// TestWorkloadResults pins what the batch workload does, so that the determinism test above
// compares meaningful results.
func TestWorkloadResults(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	res := apply(t, f, logOf(t, 1, workloads()["batch"]...))
	checks := []struct {
		entry int
		want  []string
	}{
		{2, []string{"part0{dup=false events=2 err=<nil>}", "part1{dup=false events=1 err=<nil>}", "seq=0", "seq=2"}},
		{3, []string{"part0{dup=true events=0 err=<nil>}"}},
		{4, []string{"part1{dup=false events=1", "part2{dup=false events=1"}},
		{5, []string{"unknown stream", "bad event", "part2{dup=false events=1 err=<nil>}"}},
		{7, []string{"producer seq too old", "window, which starts at 976"}},
	}
	for _, c := range checks {
		for _, w := range c.want {
			if !strings.Contains(res[c.entry-1], w) {
				t.Errorf("entry %d: %s\nwant it to contain %q", c.entry, res[c.entry-1], w)
			}
		}
	}
	if got, want := totals(t, f), `{"records":[["a",22],["b",7],["c",6],["d",6],["e",3]]}`; got != want {
		t.Errorf("totals = %s, want %s", got, want)
	}
	st := f.Stats()
	if st.Entries != 8 || st.Duplicates != 1 || st.Failed != 3 || st.Events != 11 || st.Parts != 8 {
		t.Errorf("stats = %+v", st)
	}
}

func TestOutputSeqUniqueInEntry(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	res := mustApply(t, f, 2, batch(t0+1, part("S", "", 0, ev("a", 1), ev("b", 2)), part("S", "", 0, ev("a", 3)), part("S", "", 0, ev("c", 4))))
	if len(res.Outputs) != 4 {
		t.Fatalf("outputs = %d, want 4: %s", len(res.Outputs), render(res))
	}
	for i, o := range res.Outputs {
		if o.Seq != i {
			t.Errorf("output %d has Seq %d", i, o.Seq)
		}
	}
}

func TestDeployAndUndeployErrors(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	if res := mustApply(t, f, 1, Command{Kind: KindDeploy, Text: "@app:name('X') define stream S (;"}); res.Err == nil || !strings.HasPrefix(res.Err.Error(), "fsm: deploy: ") {
		t.Errorf("bad app: Err = %v", res.Err)
	}
	if res := mustApply(t, f, 2, Command{Kind: KindUndeploy, Text: "X"}); !errors.Is(res.Err, engine.ErrUnknownApp) {
		t.Errorf("undeploy unknown: Err = %v, want ErrUnknownApp", res.Err)
	}
	if res := mustApply(t, f, 3, Command{Kind: KindDeploy, Text: testApp}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := mustApply(t, f, 4, Command{Kind: KindUndeploy, Text: "T"}); res.Err != nil {
		t.Error(res.Err)
	}
	f.Read(func(e View) {
		if len(e.Apps()) != 0 {
			t.Errorf("apps left: %d", len(e.Apps()))
		}
	})
	if f.AppliedIndex() != 4 {
		t.Errorf("AppliedIndex = %d, want 4 (failed commands still count as applied)", f.AppliedIndex())
	}
}

func TestFlushedDropsRows(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	apply(t, f, logOf(t, 1, workloads()["flushed"][:5]...))
	if got := f.Stats().Dropped; got == 0 {
		t.Error("flushed(3) after the tick dropped no rows")
	}
}

// TestBadPartInBatch: a bad part fails alone and changes nothing; its seq is not recorded.
func TestBadPartInBatch(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	before := totals(t, f)
	res := mustApply(t, f, 2, batch(t0+1,
		part("S", "good", 1, ev("a", 1)),
		part("S", "bad", 1, ev("a", 100), expr.Row{expr.String("a"), expr.String("x")}),
		part("Nope", "bad2", 1, ev("a", 1)),
		part("S", "good", 2, ev("b", 2)),
	))
	if !errors.Is(res.Parts[1].Err, engine.ErrBadEvent) || res.Parts[1].Events != 0 {
		t.Errorf("part 1 = %+v, want ErrBadEvent", res.Parts[1])
	}
	if !errors.Is(res.Parts[2].Err, engine.ErrUnknownStream) {
		t.Errorf("part 2 = %+v, want ErrUnknownStream", res.Parts[2])
	}
	if res.Parts[0].Err != nil || res.Parts[3].Err != nil || res.Parts[0].Events != 1 || res.Parts[3].Events != 1 {
		t.Errorf("good parts = %+v %+v", res.Parts[0], res.Parts[3])
	}
	if got, want := totals(t, f), `{"records":[["a",1],["b",2]]}`; got != want {
		t.Errorf("totals = %s, want %s (before: %s)", got, want, before)
	}
	// The bad producers' seqs were not recorded: fixed retries apply.
	res = mustApply(t, f, 3, batch(t0+2, part("S", "bad", 1, ev("a", 100)), part("S", "bad2", 1, ev("a", 1000))))
	for i, p := range res.Parts {
		if p.Err != nil || p.Duplicate || p.Events != 1 {
			t.Errorf("retry part %d = %+v", i, p)
		}
	}
}

func TestApplyPanicsOnGarbage(t *testing.T) {
	cases := []struct {
		name, msg string
		data      []byte
	}{
		{"garbage", "fsm: decode entry 7: fsm: bad command", []byte("not a command")},
		{"empty", "fsm: decode entry 7", nil},
		{"unknown kind", "unknown command kind 200", []byte{1, 200, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, batched := range []bool{false, true} {
				f := newFSM(t, DefaultConfig())
				func() {
					defer func() {
						r := recover()
						if r == nil || !strings.Contains(fmt.Sprint(r), c.msg) {
							t.Errorf("batched=%v: recovered %v, want a panic containing %q", batched, r, c.msg)
						}
					}()
					l := &raft.Log{Index: 7, Type: raft.LogCommand, Data: c.data}
					if batched {
						f.ApplyBatch([]*raft.Log{l})
					} else {
						f.Apply(l)
					}
				}()
				if f.AppliedIndex() != 0 {
					t.Errorf("AppliedIndex moved to %d", f.AppliedIndex())
				}
			}
		})
	}
}

func TestNonCommandEntriesIgnored(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	before := state(t, f)
	for i, typ := range []raft.LogType{raft.LogNoop, raft.LogConfiguration, raft.LogBarrier, raft.LogAddPeerDeprecated} {
		l := &raft.Log{Index: uint64(10 + i), Type: typ, Data: []byte("garbage")}
		if r := f.Apply(l); r != nil {
			t.Errorf("Apply(%v) = %v, want nil", typ, r)
		}
	}
	rs := f.ApplyBatch([]*raft.Log{
		{Index: 20, Type: raft.LogConfiguration, Data: []byte("x")},
		logOf(t, 21, batch(t0+1, part("S", "", 0, ev("a", 1))))[0],
		{Index: 22, Type: raft.LogNoop},
	})
	if len(rs) != 3 || rs[0] != nil || rs[2] != nil {
		t.Fatalf("ApplyBatch = %v", rs)
	}
	if r, ok := rs[1].(*ApplyResult); !ok || r.Index != 21 || r.Parts[0].Events != 1 {
		t.Errorf("ApplyBatch command result = %s", render(rs[1]))
	}
	if f.AppliedIndex() != 21 {
		t.Errorf("AppliedIndex = %d, want 21", f.AppliedIndex())
	}
	g := newFSM(t, DefaultConfig())
	apply(t, g, logOf(t, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp}))
	if !bytes.Equal(state(t, g), before) {
		t.Error("non-command entries changed the state")
	}
}

// TestApplyBatchEqualsApply: batches of every size give the results and state of Apply.
func TestApplyBatchEqualsApply(t *testing.T) {
	logs := logOf(t, 1, mixedWorkload(80)...)
	// Interleave non-command entries, as raft's batching path delivers configuration ones.
	var mixed []*raft.Log
	for i, l := range logs {
		mixed = append(mixed, l)
		if i%9 == 4 {
			mixed = append(mixed, &raft.Log{Index: l.Index, Type: raft.LogConfiguration})
		}
	}
	one := newFSM(t, DefaultConfig())
	var want []string
	for _, l := range mixed {
		want = append(want, render(one.Apply(l)))
	}
	for _, size := range []int{1, 2, 5, 16, len(mixed)} {
		f := newFSM(t, DefaultConfig())
		var got []string
		for i := 0; i < len(mixed); i += size {
			for _, r := range f.ApplyBatch(mixed[i:min(i+size, len(mixed))]) {
				got = append(got, render(r))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("batch size %d: results differ from Apply", size)
		}
		if !bytes.Equal(state(t, f), state(t, one)) {
			t.Errorf("batch size %d: state differs from Apply", size)
		}
	}
}

func TestCheckBatch(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	mustApply(t, f, 2, batch(t0, part("S", "p", 5000, ev("a", 1))))
	if errs := f.CheckBatch([]Part{part("S", "", 0, ev("a", 1)), part("S", "p", 4000, ev("b", 1))}); errs != nil {
		t.Errorf("valid parts: %v", errs)
	}
	parts := []Part{
		part("S", "", 0, ev("a", 1)),
		part("Nope", "", 0, ev("a", 1)),
		part("S", "", 0, expr.Row{expr.Long(1)}),
		part("S", "p", 10, ev("a", 1)),
	}
	before := state(t, f)
	errs := f.CheckBatch(parts)
	if len(errs) != 4 || errs[0] != nil || !errors.Is(errs[1], engine.ErrUnknownStream) ||
		!errors.Is(errs[2], engine.ErrBadEvent) || !errors.Is(errs[3], ErrSeqTooOld) {
		t.Errorf("CheckBatch = %v", errs)
	}
	if !bytes.Equal(state(t, f), before) {
		t.Error("CheckBatch changed the state")
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if DefaultConfig().MaxProducers != 100_000 {
		t.Errorf("default MaxProducers = %d", DefaultConfig().MaxProducers)
	}
	for _, c := range []struct {
		cfg Config
		msg string
	}{
		{Config{MaxProducers: -1}, "MaxProducers"},
		{Config{AggTimeZone: "Mars/Olympus"}, "AggTimeZone"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", c.cfg, err, c.msg)
		}
		if _, err := New(c.cfg); err == nil {
			t.Errorf("New(%+v) succeeded", c.cfg)
		}
	}
	f := newFSM(t, Config{AggTimeZone: "Asia/Colombo"})
	if got := f.Config().MaxProducers; got != DefaultMaxProducers {
		t.Errorf("New filled MaxProducers = %d", got)
	}
	f.Read(func(e View) {
		if e.TimeZone() != "Asia/Colombo" {
			t.Errorf("engine zone = %s", e.TimeZone())
		}
	})
}

// TestConcurrentReads runs queries, checks and state reads while entries apply (for -race).
func TestConcurrentReads(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	logs := logOf(t, 1, mixedWorkload(200)...)
	apply(t, f, logs[:1])
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				f.Read(func(e View) {
					if _, err := e.Query("T", `from A within "2018-**-** **:**:**" per "minutes" select k, total`); err != nil {
						t.Error(err)
					}
				})
				f.CheckBatch([]Part{part("S", "p1", 1, ev("a", 1))})
				_ = f.StateHash()
				_ = f.Stats()
				_ = f.AppliedIndex()
			}
		}()
	}
	for i := 1; i < len(logs); i += 7 {
		f.ApplyBatch(logs[i:min(i+7, len(logs))])
	}
	close(done)
	wg.Wait()
	if f.AppliedIndex() != uint64(len(logs)) {
		t.Errorf("AppliedIndex = %d", f.AppliedIndex())
	}
}
