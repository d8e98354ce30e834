package window

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// tradeWindowQuery is the shape of TradeApp's bigTrades query (testdata/cluster/trades.siddhi)
// with a filter: from S[price > 0]#window.time(1 min) select symbol, sum(q) as t
// group by symbol having t > 100 insert into O.
func tradeWindowQuery(tb testing.TB) *Query {
	tb.Helper()
	q := query(win("time", tl(60_000)), siddhiql.CurrentEvents,
		[]siddhiql.OutputAttr{out(vr("symbol"), ""), out(call("sum", vr("q")), "t")},
		[]string{"symbol"}, bin(siddhiql.OpGt, vr("t"), il(100)))
	q.Filter = bin(siddhiql.OpGt, vr("price"), il(0))
	rq, err := Compile(q, stockStream)
	if err != nil {
		tb.Fatal(err)
	}
	return rq
}

// tradeBatches builds n batches of size TradeStream events over keys symbols.
func tradeBatches(n, size, keys int) [][]expr.Row {
	symbols := make([]expr.Value, keys)
	for i := range symbols {
		symbols[i] = expr.String(fmt.Sprintf("SYM%05d", i))
	}
	batches := make([][]expr.Row, n)
	for i := range batches {
		rows := make([]expr.Row, size)
		for j := range rows {
			k := (i*size + j) * 7919 % keys
			rows[j] = evp(symbols[k].S, float64(j%500)+0.25, int64(j%100), 0)
		}
		batches[i] = rows
	}
	return batches
}

// BenchmarkTimeWindowQuery feeds 1000-event batches to the bigTrades query shape, one batch
// every 500 ms of stamped time, so the 1-minute window holds 120 batches (120,000 events)
// and every batch expires the one that arrived a minute before it. The window is full before
// the timer starts; the outputs are kept until the next batch, as the engine keeps them for
// the outbox. Reported per 1000-event batch.
func BenchmarkTimeWindowQuery(b *testing.B) {
	const step, size = 500, 1000
	for _, keys := range []int{100, 10000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			q := tradeWindowQuery(b)
			batches := tradeBatches(64, size, keys)
			var outs []Output
			emit := func(o Output) { outs = append(outs, o) }
			now := int64(1514782800000)
			for i := range 60_000 / step {
				now += step
				q.Process(now, batches[i%len(batches)], emit)
				outs = outs[:0]
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				now += step
				outs = outs[:0]
				q.Process(now, batches[i%len(batches)], emit)
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkTimeWindowHeld reports the live heap the bigTrades query shape holds per event in
// its window (B/event), over 100 symbols so the per-key aggregates hardly count: 200
// 1000-event batches, all within the minute.
func BenchmarkTimeWindowHeld(b *testing.B) {
	const size, n = 1000, 200
	batches := tradeBatches(n, size, 100)
	var per float64
	for b.Loop() {
		q := tradeWindowQuery(b)
		base := liveHeap()
		now := int64(1514782800000)
		for _, rows := range batches {
			now += 100
			q.Process(now, rows, func(Output) {})
		}
		per = float64(liveHeap()-base) / float64(n*size)
		runtime.KeepAlive(q)
	}
	b.ReportMetric(per, "B/event")
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkTimeWindowLarge is the bigTrades query shape with a window of 1.2M events (a
// 1000-event batch every 50 ms of stamped time, 100 symbols). grow fills an empty window
// (one op is the whole fill) and reports the live heap per event held and the time of one
// full collection of the filled heap (gc-ms); grow-bodies does the same with each symbol a
// substring of its own batch's request-like body text, as the ingest path decodes them (the
// bodies are made inside the timed loop). steady pushes one batch into the full window and
// expires the oldest. All report ns/event.
func BenchmarkTimeWindowLarge(b *testing.B) {
	const step, size, held = 50, 1000, 1200
	batches := tradeBatches(64, size, 100)
	fill := func(q *Query, now int64, bodies bool) int64 {
		rows, starts := make([]expr.Row, size), make([]int, size)
		for j := range rows {
			rows[j] = make(expr.Row, len(stockStream.Attributes))
		}
		for i := range held {
			now += step
			in := batches[i%len(batches)]
			if bodies {
				body := []byte{}
				for j, r := range in {
					body = append(body, `{"symbol":"`...)
					starts[j] = len(body)
					body = append(body, r[0].S...)
					body = append(body, `","price":`...)
					body = strconv.AppendFloat(body, r[1].F, 'g', -1, 64)
					body = append(body, `,"volume":`...)
					body = strconv.AppendInt(body, r[2].I, 10)
					body = append(body, "},"...)
				}
				text := string(body)
				for j, r := range in {
					sym := text[starts[j] : starts[j]+len(r[0].S)] // shares the body's bytes
					copy(rows[j], r)
					rows[j][0].S = sym
				}
				in = rows
			}
			q.Process(now, in, func(Output) {})
		}
		return now
	}
	for _, bodies := range []bool{false, true} {
		name := "grow"
		if bodies {
			name = "grow-bodies"
		}
		b.Run(name, func(b *testing.B) {
			var per, gcms float64
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				q := tradeWindowQuery(b)
				base := liveHeap()
				b.StartTimer()
				fill(q, 1514782800000, bodies)
				b.StopTimer()
				per = float64(liveHeap()-base) / float64(held*size)
				start := time.Now()
				runtime.GC()
				gcms = float64(time.Since(start).Microseconds()) / 1000
				runtime.KeepAlive(q)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*held*size), "ns/event")
			b.ReportMetric(per, "B/event")
			b.ReportMetric(gcms, "gc-ms")
		})
	}
	b.Run("steady", func(b *testing.B) {
		q := tradeWindowQuery(b)
		now := fill(q, 1514782800000, false)
		var outs []Output
		emit := func(o Output) { outs = append(outs, o) }
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			now += step
			outs = outs[:0]
			q.Process(now, batches[i%len(batches)], emit)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
	})
}
