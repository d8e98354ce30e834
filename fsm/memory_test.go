package fsm

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
)

// BenchmarkMemoryPerKey reports the heap an FSM holds per distinct key (B/key) after the
// cluster's TradeApp (testdata/cluster/trades.siddhi) was deployed and keys symbols were sent
// once each through Apply, as `tally-bench load` sends them: 1000-event entries from 8
// producers, 150 ms of stamped time per entry, and every stamped second a tick entry and a
// flush (rows changed since the last flush cloned, as the leader does, then KindFlushed).
//
//	TALLY_MEM_KEYS=1000000 go test -run '^$' -bench MemoryPerKey -benchtime 1x ./fsm/
func BenchmarkMemoryPerKey(b *testing.B) {
	keys := 200_000
	if s := os.Getenv("TALLY_MEM_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		keys = n
	}
	app, err := os.ReadFile("../testdata/cluster/trades.siddhi")
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
		var per float64
		for b.Loop() {
			var f *FSM
			per, f = fsmMemLoad(b, string(app), keys)
			runtime.KeepAlive(f)
		}
		b.ReportMetric(per, "B/key")
	})
}

func fsmMemLoad(b *testing.B, app string, keys int) (float64, *FSM) {
	b.Helper()
	f := newFSM(b, DefaultConfig())
	now := t0
	var index uint64
	entry := func(c Command) {
		index++
		data, err := c.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		res, ok := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}).(*ApplyResult)
		if !ok || res.Err != nil {
			b.Fatalf("entry %d: %+v", index, res)
		}
		for _, p := range res.Parts {
			if p.Err != nil {
				b.Fatalf("entry %d: %v", index, p.Err)
			}
		}
	}
	entry(Command{Kind: KindDeploy, Time: now, Text: app})
	entry(Command{Kind: KindShard, Time: now, Text: "s1"})
	base := heapInUse()
	var flushed uint64
	lastFlush := now
	seqs := make([]uint64, 8)
	for from, n := 0, 0; from < keys; from, n = from+1000, n+1 {
		events := make([]expr.Row, 0, 1000)
		for k := from; k < min(from+1000, keys); k++ {
			events = append(events, expr.Row{expr.String(fmt.Sprintf("S%06d", k)), expr.Double(float64(1+k%100000) / 100), expr.Long(int64(1 + k%100)), expr.Long(now)})
		}
		p := n % len(seqs)
		seqs[p]++
		entry(batch(now, part("TradeStream", fmt.Sprintf("load-%d", p), seqs[p], events...)))
		now += 150
		if now-lastFlush >= 1000 {
			lastFlush = now
			entry(Command{Kind: KindTick, Time: now})
			var kept []*agg.Row
			through := index
			f.Read(func(e View) {
				for _, a := range e.Apps() {
					for _, def := range a.Aggregations() {
						st, _ := a.Aggregation(def.Name)
						for _, rs := range st.ChangedIn(flushed, math.MaxUint64) {
							for _, r := range rs {
								kept = append(kept, r.Clone())
							}
						}
					}
				}
			})
			runtime.KeepAlive(kept)
			flushed = through
			entry(Command{Kind: KindFlushed, Time: now, Index: through})
		}
	}
	return float64(heapInUse()-base) / float64(keys), f
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
