package partition_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/siddhiql"
)

// windowStreams is the input stream of windowQueries, partitioned by its key k.
const windowStreams = `@app:name('W')
@distribution(strategy='partitioned', partitionKey='k')
define stream S (k string, v long);
`

// windowQueries are the windows CheckApp accepts over a partitioned stream with several
// groups, grouped by the partition key, each with a having clause and emitting current and
// expired events into its own stream.
const windowQueries = `
from S#window.time(3 sec) select k, sum(v) as total, count() as n group by k having n > 1 insert all events into TimeOut;
from S#window.timeBatch(2 sec, 0) select k, sum(v) as total, max(v) as top group by k having top > 1 insert all events into TimeBatchOut;
`

// keyDependentQueries are windows whose contents depend on other keys' events: a group
// holding only some keys would emit other outputs for a key than one holding all, so
// CheckApp refuses them with several groups.
var keyDependentQueries = []string{
	`from S#window.length(4) select k, sum(v) as total group by k insert all events into LengthOut;`,
	`from S#window.lengthBatch(5) select k, sum(v) as total group by k insert all events into LengthBatchOut;`,
	`from S#window.timeBatch(2 sec) select k, sum(v) as total group by k insert all events into TimeBatchOut;`,
	`from S#window.externalTime(v, 2 sec) select k, sum(v) as total group by k insert all events into ExtOut;`,
}

// step is one call made to every engine: events arriving together at a stamped time, or a
// tick (no events).
type step struct {
	now    int64
	events []expr.Row
}

// windowSteps is a deterministic sequence of batches of many keys with increasing stamped
// times, and ticks in between.
func windowSteps(n int) []step {
	rng := rand.New(rand.NewPCG(1, 2))
	now := int64(1_700_000_000_000)
	var steps []step
	for range n {
		now += rng.Int64N(900)
		if rng.IntN(4) == 0 {
			steps = append(steps, step{now: now})
			continue
		}
		events := make([]expr.Row, 1+rng.IntN(6))
		for i := range events {
			events[i] = expr.Row{expr.String(fmt.Sprintf("key-%d", rng.IntN(12))), expr.Long(rng.Int64N(5))}
		}
		steps = append(steps, step{now: now, events: events})
	}
	return steps
}

// perKey is every output of an engine, per output stream and partition key: stream,
// expired flag, time and row, in the order the engine emitted them.
type perKey map[string]map[string][]string

func (p perKey) add(outs []engine.Output) {
	for _, o := range outs {
		k := o.Row[0].S
		if p[o.Stream] == nil {
			p[o.Stream] = map[string][]string{}
		}
		p[o.Stream][k] = append(p[o.Stream][k], fmt.Sprintf("%s expired=%v t=%d %v", o.Stream, o.Expired, o.Time, o.Row))
	}
}

func newWindowEngine(t *testing.T, app string) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Deploy(app); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return e
}

// TestPartitionedWindowsMatchOneGroup feeds the same events to one engine and, routed by
// partition key, to three: for every key, the outputs of the three engines together are
// the outputs of the one, in the same order.
func TestPartitionedWindowsMatchOneGroup(t *testing.T) {
	const groups = 3
	app := windowStreams + windowQueries
	parsed, err := siddhiql.Parse(app)
	if err != nil {
		t.Fatal(err)
	}
	if err := partition.CheckApp(parsed, groups); err != nil {
		t.Fatalf("CheckApp: %v", err)
	}
	def := parsed.Streams[0]
	keyIndex := partition.KeyIndex(def)
	router := partition.NewRouter(groups)

	one := newWindowEngine(t, app)
	var split [groups]*engine.Engine
	for g := range split {
		split[g] = newWindowEngine(t, app)
	}
	want, got := perKey{}, perKey{}
	owner := map[string]uint32{} // the group each key's outputs came from
	addSplit := func(g uint32, outs []engine.Output) {
		for _, o := range outs {
			k := o.Row[0].S
			if h, ok := owner[k]; ok && h != g {
				t.Fatalf("key %s has outputs from groups %d and %d", k, h, g)
			}
			owner[k] = g
		}
		got.add(outs)
	}
	steps := windowSteps(400)
	for i, s := range steps {
		index := uint64(i + 1)
		if s.events == nil {
			want.add(one.Tick(index, s.now))
			for g, e := range split {
				addSplit(uint32(g), e.Tick(index, s.now))
			}
			continue
		}
		outs, err := one.Apply(index, s.now, "S", s.events)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want.add(outs)
		for _, p := range router.Route(def.Routing, keyIndex, s.events) {
			outs, err := split[p.Group].Apply(index, s.now, "S", p.Events)
			if err != nil {
				t.Fatalf("step %d group %d: %v", i, p.Group, err)
			}
			addSplit(p.Group, outs)
		}
	}
	// Every group ticks on its own in a cluster: a last tick lets every batch due close.
	last := steps[len(steps)-1].now + 10_000
	want.add(one.Tick(uint64(len(steps)+1), last))
	for g, e := range split {
		addSplit(uint32(g), e.Tick(uint64(len(steps)+1), last))
	}
	for k, g := range owner {
		if f := partition.For(partition.KeyBytes(nil, expr.String(k)), groups); f != g {
			t.Errorf("key %s: outputs from group %d, partition.For says %d", k, g, f)
		}
	}
	for _, stream := range []string{"TimeOut", "TimeBatchOut"} {
		t.Run(stream, func(t *testing.T) {
			if len(want[stream]) < 12 {
				t.Fatalf("one engine: outputs for %d keys, want all 12: the sequence does not exercise the query", len(want[stream]))
			}
			total, expired := 0, 0
			for _, k := range slices.Sorted(mapsKeys(want[stream], got[stream])) {
				w, g := want[stream][k], got[stream][k]
				total += len(w)
				for _, o := range w {
					if strings.Contains(o, " expired=true ") {
						expired++
					}
				}
				if i := firstDiff(w, g); i >= 0 {
					t.Errorf("key %s: %d outputs from one group, %d from %d groups; first difference at output %d:\n one: %s\n %d groups: %s",
						k, len(w), len(g), groups, i, at(w, i), groups, at(g, i))
				}
			}
			t.Logf("%d outputs (%d expired) over %d keys", total, expired, len(want[stream]))
			if expired == 0 {
				t.Errorf("one engine emitted no expired events: the sequence does not exercise the window")
			}
		})
	}
}

// TestCheckAppKeyDependentWindows: windows whose contents depend on other keys' events are
// refused over a partitioned stream with several groups, and accepted with one.
func TestCheckAppKeyDependentWindows(t *testing.T) {
	for _, q := range keyDependentQueries {
		parsed, err := siddhiql.Parse(windowStreams + q)
		if err != nil {
			t.Fatal(err)
		}
		if err := partition.CheckApp(parsed, 1); err != nil {
			t.Errorf("%s: refused with one group: %v", q, err)
		}
		if err := partition.CheckApp(parsed, 3); err == nil || !strings.Contains(err.Error(), "depend on the events of every key") {
			t.Errorf("%s: CheckApp with 3 groups = %v, want a refusal explaining the window depends on other keys", q, err)
		}
	}
}

func mapsKeys(ms ...map[string][]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}

// firstDiff is the first position where a and b differ, or -1.
func firstDiff(a, b []string) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}

// TestCheckAppWindowOverRoundRobin: the same windows over a roundRobin stream are refused
// with several groups, where each group would see an arbitrary part of the stream, and
// accepted with one.
func TestCheckAppWindowOverRoundRobin(t *testing.T) {
	app := strings.Replace(windowStreams, "@distribution(strategy='partitioned', partitionKey='k')\n", "", 1) + windowQueries
	parsed, err := siddhiql.Parse(app)
	if err != nil {
		t.Fatal(err)
	}
	if s := parsed.Streams[0].Routing.Strategy; s != siddhiql.RoundRobin {
		t.Fatalf("stream S is %s, want roundRobin", s)
	}
	err = partition.CheckApp(parsed, 3)
	var serr *siddhiql.Error
	if err == nil || !errors.As(err, &serr) {
		t.Fatalf("CheckApp with 3 groups: %v, want a *siddhiql.Error", err)
	}
	for _, want := range []string{"query 1 keeps a window over stream S, which is routed roundRobin", "partitionKey='k'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckApp with 3 groups: %q, want it to contain %q", err, want)
		}
	}
	if err := partition.CheckApp(parsed, 1); err != nil {
		t.Errorf("CheckApp with 1 group: %v", err)
	}
}
