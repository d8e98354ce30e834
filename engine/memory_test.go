package engine

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
)

// memLoad feeds keys distinct symbols once each to app, as `tally-bench load` does against a
// cluster: 1000-event batches, the stamped time advancing 150 ms per batch (1M keys in
// 150 s), event time = arrival time, and every stamped second a tick and a flush as the
// leader would do (the rows changed since the last flush cloned, then DropFlushed). It
// returns the live heap (HeapAlloc) and the heap spans in use (HeapInuse) after a GC, over
// those of the deployed, empty engine, per key.
func memLoad(tb testing.TB, app string, keys int) (bytesPerKey, inusePerKey float64, e *Engine) {
	tb.Helper()
	e, err := New(Config{})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.Deploy(app); err != nil {
		tb.Fatal(err)
	}
	base, baseInuse := heapInUse()
	const batch = 1000
	now := int64(1514782800000)
	lastFlush := now
	var index, flushed uint64
	rows := make([]expr.Row, 0, batch)
	flush := func() {
		var kept []*agg.Row // what the flusher holds while writing
		for _, a := range e.Apps() {
			for _, def := range a.Aggregations() {
				st, _ := a.Aggregation(def.Name)
				for _, rs := range st.Changed(flushed) {
					for _, r := range rs {
						kept = append(kept, r.Clone())
					}
				}
			}
		}
		runtime.KeepAlive(kept)
		flushed = index
		index++
		e.DropFlushed(flushed)
	}
	for from := 0; from < keys; from += batch {
		rows = rows[:0]
		for k := from; k < min(from+batch, keys); k++ {
			rows = append(rows, expr.Row{
				expr.String("S" + fmt.Sprintf("%06d", k)),
				expr.Double(float64(1+k%100000) / 100),
				expr.Long(int64(1 + k%100)),
				expr.Long(now),
			})
		}
		index++
		if _, err := e.Apply(index, now, "TradeStream", rows); err != nil {
			tb.Fatal(err)
		}
		now += 150
		if now-lastFlush >= 1000 {
			lastFlush = now
			index++
			e.Tick(index, now)
			flush()
		}
	}
	index++
	e.Tick(index, now)
	flush()
	alloc, inuse := heapInUse()
	per := float64(alloc-base) / float64(keys)
	perInuse := float64(inuse-baseInuse) / float64(keys)
	if path := os.Getenv("TALLY_MEM_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			tb.Fatal(err)
		}
	}
	return per, perInuse, e
}

// heapInUse is the live heap and the bytes of heap spans in use after a full collection.
func heapInUse() (alloc, inuse uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse
}

// BenchmarkMemoryPerKey reports the heap held per distinct key after loading keys symbols
// once each into TradeAggregation (agg) and into the cluster's whole TradeApp
// (testdata/cluster/trades.siddhi: the aggregation plus a 1-minute time window query): the
// live heap (B/key, HeapAlloc) and the heap spans in use (inuse-B/key, HeapInuse, which
// counts the free room in partly used spans too). TALLY_MEM_KEYS sets keys (default 200,000;
// 1,000,000 takes about a minute per app and 2 GiB).
//
//	go test -run '^$' -bench MemoryPerKey -benchtime 1x ./engine/
//	TALLY_MEM_KEYS=1000000 TALLY_MEM_HEAPPROFILE=/tmp/heap.out go test -run '^$' -bench MemoryPerKey/agg -benchtime 1x -memprofilerate 512 ./engine/
//	go tool pprof -top -sample_index=inuse_space /tmp/heap.out
//
// TALLY_MEM_HEAPPROFILE writes the heap profile while the loaded engine is still alive
// (-memprofile would be taken after it is gone).
func BenchmarkMemoryPerKey(b *testing.B) {
	keys := 200_000
	if s := os.Getenv("TALLY_MEM_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		keys = n
	}
	cluster, err := os.ReadFile("../testdata/cluster/trades.siddhi")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, app string }{{"agg", tradeApp}, {"cluster-app", string(cluster)}} {
		b.Run(fmt.Sprintf("%s/keys=%d", c.name, keys), func(b *testing.B) {
			var per, inuse float64
			for b.Loop() {
				var e *Engine
				per, inuse, e = memLoad(b, c.app, keys)
				runtime.KeepAlive(e)
			}
			b.ReportMetric(per, "B/key")
			b.ReportMetric(inuse, "inuse-B/key")
		})
	}
}

// TestMemoryPerKey keeps the per-key heap of TradeAggregation from growing back: 20k keys
// loaded as the memory benchmark does must hold at most maxBytesPerKey each.
func TestMemoryPerKey(t *testing.T) {
	const maxBytesPerKey = 400
	per, _, e := memLoad(t, tradeApp, 20_000)
	runtime.KeepAlive(e)
	t.Logf("%.0f B/key", per)
	if per > maxBytesPerKey {
		t.Errorf("%.0f B/key held, want at most %d", per, maxBytesPerKey)
	}
}
