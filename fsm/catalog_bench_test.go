package fsm

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/expr"
)

// BenchmarkStreamDefDuringApply measures a handler's stream definition lookup while another
// goroutine applies 1000-event batches back to back: through the read lock (Read, as ingest
// decoding did) and through the published catalog. p99.9-ns is the 99.9th percentile lookup,
// over100µs/M the lookups per million that took more than 100 µs (waits behind Apply, or
// the goroutine descheduled on a busy machine).
func BenchmarkStreamDefDuringApply(b *testing.B) {
	lookups := map[string]func(f *FSM) bool{
		"read-lock": func(f *FSM) bool {
			var ok bool
			f.Read(func(v View) { _, ok = v.Stream("S") })
			return ok
		},
		"catalog": func(f *FSM) bool {
			_, ok := f.Catalog().StreamDef("S")
			return ok
		},
	}
	for _, name := range []string{"read-lock", "catalog"} {
		lookup := lookups[name]
		b.Run(name, func(b *testing.B) {
			f := newFSM(b, DefaultConfig())
			mustApply(b, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
			events := make([]expr.Row, 1000)
			for i := range events {
				events[i] = ev(fmt.Sprintf("k%d", i%100), int64(i))
			}
			c := batch(t0, part("S", "", 0, events...))
			data, err := c.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := uint64(2); !stop.Load(); i++ {
					f.Apply(&raft.Log{Index: i, Type: raft.LogCommand, Data: data})
				}
			}()
			for f.AppliedIndex() < 3 { // the applier is under way
				runtime.Gosched()
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if !lookup(f) {
					b.Fatal("stream S not found")
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			slices.Sort(lat)
			slow := len(lat) - sort.Search(len(lat), func(i int) bool { return lat[i] > 100*time.Microsecond })
			b.ReportMetric(float64(lat[len(lat)*999/1000]), "p99.9-ns")
			b.ReportMetric(float64(slow)*1e6/float64(len(lat)), "over100µs/M")
		})
	}
}
