package fsm

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"unsafe"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// leaderAndFollower applies cmds to a leader, which remembers each batch it proposes and
// applies it from that, and to a follower, which decodes a copy of every entry; with batch
// set, through ApplyBatch in groups of three. It fails unless every result and the state
// after every entry are the same on both, and returns both.
func leaderAndFollower(t *testing.T, cmds []Command, batched bool) (leader, follower *FSM) {
	t.Helper()
	leader, follower = newFSM(t, DefaultConfig()), newFSM(t, DefaultConfig())
	var lLogs, fLogs []*raft.Log
	flush := func() {
		var lr, fr []any
		if batched {
			lr, fr = leader.ApplyBatch(lLogs), follower.ApplyBatch(fLogs)
		} else {
			for i := range lLogs {
				lr, fr = append(lr, leader.Apply(lLogs[i])), append(fr, follower.Apply(fLogs[i]))
			}
		}
		for i := range lr {
			if got, want := render(lr[i]), render(fr[i]); got != want {
				t.Fatalf("entry %d: the leader's result\n%s\nthe follower's\n%s", lLogs[i].Index, got, want)
			}
		}
		if !bytes.Equal(state(t, leader), state(t, follower)) {
			t.Fatalf("after entry %d the leader's and the follower's states differ", lLogs[len(lLogs)-1].Index)
		}
		lLogs, fLogs = lLogs[:0], fLogs[:0]
	}
	for i := range cmds {
		c := cmds[i]
		data, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		leader.RememberProposal(data, &c)
		index := uint64(i + 1)
		lLogs = append(lLogs, &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
		fLogs = append(fLogs, &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: bytes.Clone(data)})
		if !batched || len(lLogs) == 3 {
			flush()
		}
	}
	if len(lLogs) > 0 {
		flush()
	}
	if n := len(leader.proposed.m); n != 0 {
		t.Fatalf("%d proposals left remembered", n)
	}
	return leader, follower
}

// spareRows returns events whose rows share one slab with spare capacity each, and whose
// strings are substrings of one body, as a request handler decodes them.
func spareRows(body string, n int) []expr.Row {
	slab := make([]expr.Value, 3*n)
	rows := make([]expr.Row, n)
	for i := range rows {
		row := slab[3*i : 3*i+2] // capacity 3: one value of the next row's
		row[0] = expr.String(body[i%len(body) : i%len(body)+1])
		row[1] = expr.Long(int64(i))
		rows[i] = row
	}
	return rows
}

func TestProposed_LeaderStateEqualsFollower(t *testing.T) {
	loads := workloads()
	loads["render"] = renderLog()
	loads["sinks"] = sinkLog(t, 12)
	loads["spare"] = []Command{{Kind: KindDeploy, Time: t0, Text: testApp},
		batch(t0+10, part("S", "p1", 1, spareRows("abcdefgh", 40)...)),
		batch(t0+20, part("S", "p1", 2, spareRows("hgfedcba", 40)...), part("S", "", 0)),
		{Kind: KindTick, Time: t0 + 5000},
		batch(t0+5010, part("S", "p2", 1, spareRows("xyz", 9)...))}
	for _, name := range slices.Sorted(maps.Keys(loads)) {
		for _, batched := range []bool{false, true} {
			cmds := loads[name]
			leader, follower := leaderAndFollower(t, cmds, batched)
			batches := 0
			for _, c := range cmds {
				if c.Kind == KindBatch {
					batches++
				}
			}
			if got := leader.Stats().Proposed; got != uint64(batches) {
				t.Errorf("%s (batched %v): the leader applied %d entries as proposed, want all %d batches", name, batched, got, batches)
			}
			if got := follower.Stats().Proposed; got != 0 {
				t.Errorf("%s: the follower applied %d entries it never proposed", name, got)
			}
		}
	}
}

// TestProposed_Adopt: the command applied holds no string of the buffer it was decoded from
// and no row with spare capacity; a part without events has nil events.
func TestProposed_Adopt(t *testing.T) {
	body := "abcdefghijklmnop"
	c := batch(t0, part("S", "p1", 1, spareRows(body, 16)...), part("S", "", 0))
	c.Parts[1].Events = []expr.Row{}
	if !adopt(&c) {
		t.Fatal("a canonical command refused")
	}
	start, end := uintptr(unsafe.Pointer(unsafe.StringData(body))), uintptr(unsafe.Pointer(unsafe.StringData(body)))+uintptr(len(body))
	for i, row := range c.Parts[0].Events {
		if cap(row) != len(row) {
			t.Fatalf("row %d: capacity %d, length %d", i, cap(row), len(row))
		}
		if p := uintptr(unsafe.Pointer(unsafe.StringData(row[0].S))); p >= start && p < end {
			t.Fatalf("row %d: string %q still points into the body", i, row[0].S)
		}
	}
	if c.Parts[1].Events != nil {
		t.Fatal("empty events not nil")
	}
}

// TestProposed_Fallbacks: whenever the remembered command cannot be trusted, Apply decodes.
func TestProposed_Fallbacks(t *testing.T) {
	f, g := newFSM(t, DefaultConfig()), newFSM(t, DefaultConfig())
	index := uint64(0)
	step := func(name string, c Command, remember func(data []byte, c *Command) []byte, wantProposed uint64) {
		t.Helper()
		index++
		data, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		entry := remember(data, &c)
		f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: entry})
		g.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: bytes.Clone(data)})
		if got := f.Stats().Proposed; got != wantProposed {
			t.Fatalf("%s: %d entries applied as proposed, want %d", name, got, wantProposed)
		}
		if !bytes.Equal(state(t, f), state(t, g)) {
			t.Fatalf("%s: the state differs from decoding's", name)
		}
	}
	same := func(data []byte, c *Command) []byte { f.RememberProposal(data, c); return data }
	step("deploy", Command{Kind: KindDeploy, Time: t0, Text: testApp}, same, 0) // only batches are remembered
	step("batch", batch(t0+1, part("S", "", 0, ev("a", 1))), same, 1)
	// A value carrying a field its type does not encode: decoding gives another value.
	odd := batch(t0+2, part("S", "", 0, ev("a", 2)))
	odd.Parts[0].Events[0][1].F = 1.5
	step("non-canonical value", odd, same, 1)
	odd = batch(t0+3, part("S", "", 0, ev("a", 3)))
	odd.Parts[0].Events[0][0].I = 7
	step("non-canonical string", odd, same, 1)
	odd = batch(t0+4, part("S", "", 0, ev("a", 4)))
	odd.Parts[0].Events[0][1].T = siddhiql.TypeObject + 1
	step("unknown type", batch(t0+4, part("S", "", 0, ev("a", 4))), func(data []byte, _ *Command) []byte {
		f.RememberProposal(data, &odd)
		return data
	}, 1)
	// Equal bytes in another slice are not the proposal.
	step("copy", batch(t0+5, part("S", "", 0, ev("b", 5))), func(data []byte, c *Command) []byte {
		f.RememberProposal(data, c)
		defer f.ForgetProposal(data)
		return bytes.Clone(data)
	}, 1)
	// A forgotten proposal is not used.
	step("forgotten", batch(t0+6, part("S", "", 0, ev("b", 6))), func(data []byte, c *Command) []byte {
		f.RememberProposal(data, c)
		f.ForgetProposal(data)
		return data
	}, 1)
	step("again", batch(t0+7, part("S", "p", 1, ev("c", 7))), same, 2)
	// Bytes starting where a proposal's do, but fewer of them, are not it.
	c := batch(t0+8, part("S", "", 0, ev("d", 8)))
	data, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f.RememberProposal(data, &c)
	if got := f.proposed.take(&raft.Log{Data: data[:len(data)-1]}); got != nil {
		t.Fatal("a shorter entry at the same address was taken for the proposal")
	}
	if n := len(f.proposed.m); n != 0 {
		t.Fatalf("%d proposals left remembered", n)
	}
}

// BenchmarkApplyTradesLeader is BenchmarkApplyTrades on the leader: each entry is applied
// from the command it proposed (RememberProposal) instead of being decoded.
//
//	go test -run '^$' -bench ApplyTrades -benchmem ./fsm/
func BenchmarkApplyTradesLeader(b *testing.B) {
	benchApplyTrades(b, func(f *FSM, l *raft.Log, c *Command) { f.RememberProposal(l.Data, c) })
}
