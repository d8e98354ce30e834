package engine

import (
	"fmt"
	"os"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// BenchmarkApplyTradeAggregation applies 1000-event batches of TradeStream to the seed's
// TradeAggregation (avg and sum, sec … year, event time) over 10,000 distinct symbols, one
// batch per stamped millisecond step. Decoding is excluded: rows are built up front.
func BenchmarkApplyTradeAggregation(b *testing.B) {
	for _, keys := range []int{100, 10000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			e, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Deploy(tradeApp); err != nil {
				b.Fatal(err)
			}
			const batch = 1000
			batches := tradeBatches(keys, batch)
			now := int64(1514782800000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				now += 10
				rows := batches[i%len(batches)]
				for _, r := range rows {
					r[3].I = now - 5
				}
				if _, err := e.Apply(uint64(i+1), now, "TradeStream", rows); err != nil {
					b.Fatal(err)
				}
				if i%100 == 99 {
					e.DropFlushed(uint64(i)) // as the flusher would, keeping memory bounded
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkApplyTradeApp applies 1000-event batches to the cluster's whole TradeApp
// (testdata/cluster/trades.siddhi: TradeAggregation plus the bigTrades 1-minute time window
// query), one batch every 500 ms of stamped time so the window holds 120 batches; the window
// is full before the timer starts.
func BenchmarkApplyTradeApp(b *testing.B) {
	app, err := os.ReadFile("../testdata/cluster/trades.siddhi")
	if err != nil {
		b.Fatal(err)
	}
	for _, keys := range []int{100, 10000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			e, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Deploy(string(app)); err != nil {
				b.Fatal(err)
			}
			const batch, step = 1000, 500
			batches := tradeBatches(keys, batch)
			now := int64(1514782800000)
			index := uint64(0)
			apply := func(i int) {
				now += step
				index++
				rows := batches[i%len(batches)]
				for _, r := range rows {
					r[3].I = now - 5
				}
				if _, err := e.Apply(index, now, "TradeStream", rows); err != nil {
					b.Fatal(err)
				}
				if index%100 == 99 {
					e.DropFlushed(index - 1) // as the flusher would, keeping memory bounded
				}
			}
			for i := range 60_000 / step {
				apply(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				apply(i)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// tradeBatches is 64 batches of TradeStream rows over keys symbols, spread so that
// consecutive batches touch different symbols.
func tradeBatches(keys, batch int) [][]expr.Row {
	symbols := make([]expr.Value, keys)
	for i := range symbols {
		symbols[i] = expr.String(fmt.Sprintf("SYM%05d", i))
	}
	batches := make([][]expr.Row, 64)
	for i := range batches {
		rows := make([]expr.Row, batch)
		for j := range rows {
			k := (i*batch + j) * 7919 % keys
			rows[j] = expr.Row{symbols[k], expr.Double(float64(j%500) + 0.25), expr.Long(int64(j % 100)), expr.Long(0)}
		}
		batches[i] = rows
	}
	return batches
}
