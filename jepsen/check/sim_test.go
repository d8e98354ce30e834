package check

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// simulate builds a correct history: procs processes each run opsPerProc ops against
// keys counters; every op takes effect at one instant within its interval (an unknown
// ingest possibly long after, or never). unknownRate is the share of ingests whose
// client gave up.
func simulate(seed uint64, keys, procs, opsPerProc int, unknownRate float64) *History {
	rng := rand.New(rand.NewPCG(seed, 1))
	type pending struct {
		op    int
		point time.Duration // when it takes effect; -1: never
	}
	h := &History{AlertMin: 1 << 62}
	var effects []pending
	for p := range procs {
		t := time.Duration(rng.IntN(1000)) * time.Microsecond
		for range opsPerProc {
			key := fmt.Sprintf("k%d", rng.IntN(keys))
			lat := time.Duration(1+rng.IntN(20000)) * time.Microsecond
			op := Op{Process: p, Key: key, Invoke: t, Complete: t + lat, Status: OK, Attempts: 1}
			point := t + time.Duration(rng.Int64N(int64(lat)+1))
			if rng.IntN(5) < 3 {
				op.Kind = Ingest
				op.Producer = fmt.Sprintf("p%d", p)
				op.Seq = int64(len(h.Ops))
				for i := range 1 + rng.IntN(4) {
					op.Events = append(op.Events, Event{Key: key, Producer: op.Producer, Seq: op.Seq,
						I: int64(i), TS: 1_700_000_000_000 + int64(t/time.Millisecond), V: 1})
				}
				if rng.Float64() < unknownRate {
					op.Status = Unknown
					switch rng.IntN(3) {
					case 0:
						point = -1
					case 1:
						point = op.Complete + time.Duration(rng.IntN(100))*time.Millisecond
					}
				}
			} else {
				op.Kind = Read
			}
			effects = append(effects, pending{len(h.Ops), point})
			h.Ops = append(h.Ops, op)
			t += lat + time.Duration(rng.IntN(2000))*time.Microsecond
		}
	}
	slices.SortStableFunc(effects, func(a, b pending) int { return int(a.point - b.point) })
	count := map[string]int64{}
	h.FinalLive = Counts{}
	for _, e := range effects {
		op := &h.Ops[e.op]
		switch {
		case e.point < 0:
		case op.Kind == Ingest:
			count[op.Key] += int64(len(op.Events))
			for _, ev := range op.Events {
				if h.FinalLive[ev.Key] == nil {
					h.FinalLive[ev.Key] = map[int64]int64{}
				}
				h.FinalLive[ev.Key][bucketOf(ev.TS)]++
			}
		default:
			op.Value = count[op.Key]
		}
	}
	slices.SortStableFunc(h.Ops, func(a, b Op) int { return int(a.Invoke - b.Invoke) })
	for i := range h.Ops {
		h.Ops[i].ID = i
	}
	return h
}
