package fsm

import (
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/expr"
)

// tradeEntries returns n KindBatch entries of 1000 TradeStream events over 1000 symbols,
// 150 ms of stamped time apart, from index first on, as a follower receives them.
func tradeEntries(b *testing.B, first uint64, n int) ([]*raft.Log, []*Command) {
	b.Helper()
	logs := make([]*raft.Log, n)
	cmds := make([]*Command, n)
	for i := range n {
		now := t0 + int64(i)*150
		events := make([]expr.Row, 1000)
		for k := range events {
			events[k] = expr.Row{expr.String(fmt.Sprintf("S%04d", (k*7+i)%1000)), expr.Double(float64(1+(k*13+i)%10000) / 100),
				expr.Long(int64(1 + (k+i)%100)), expr.Long(now - int64(k%50))}
		}
		c := batch(now, part("TradeStream", fmt.Sprintf("load-%d", i%8), uint64(i/8+1), events...))
		data, err := c.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		logs[i] = &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: data}
		cmds[i] = &c
	}
	return logs, cmds
}

// BenchmarkApplyTrades applies 1000-event entries of the cluster's TradeApp
// (testdata/cluster/trades.siddhi: the sec…year aggregation and the bigTrades window query,
// whose outputs go to the outbox) through FSM.Apply, decoding each entry as a follower does.
// cpu-ns/event is the process's CPU time per event over the loop.
//
//	go test -run '^$' -bench ApplyTrades -benchmem ./fsm/
func BenchmarkApplyTrades(b *testing.B) { benchApplyTrades(b, nil) }

func benchApplyTrades(b *testing.B, remember func(f *FSM, l *raft.Log, c *Command)) {
	app, err := os.ReadFile("../testdata/cluster/trades.siddhi")
	if err != nil {
		b.Fatal(err)
	}
	const entries = 400
	f := newFSM(b, DefaultConfig())
	mustApply(b, f, 1, Command{Kind: KindDeploy, Time: t0, Text: string(app)})
	logs, cmds := tradeEntries(b, 2, entries)
	if remember == nil {
		cmds = nil // the follower decodes: keeping the commands would only slow the collector
	}
	b.ReportAllocs()
	i := 0
	cpu := processCPU()
	for b.Loop() {
		if i == entries {
			b.StopTimer()
			f = newFSM(b, DefaultConfig())
			mustApply(b, f, 1, Command{Kind: KindDeploy, Time: t0, Text: string(app)})
			i = 0
			b.StartTimer()
		}
		if remember != nil {
			remember(f, logs[i], cmds[i])
		}
		res := f.Apply(logs[i]).(*ApplyResult)
		if res.Parts[0].Err != nil {
			b.Fatal(res.Parts[0].Err)
		}
		i++
	}
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
	// CPU time moves less than wall time with what else runs on the machine; it includes
	// the collector's work and the few fresh FSMs made when the entries run out.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1000, "cpu-ns/event")
}
