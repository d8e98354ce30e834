package partition_test

import (
	"slices"
	"testing"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/siddhiql"
)

// rateQueries are output rate limits and a partition that CheckApp accepts over a stream
// partitioned by k with several groups; every output starts with k.
const rateQueries = `
from S select k, v group by k output last every 2 sec insert into LastOut;
from S select k, sum(v) as total group by k output first every 3 events insert into FirstOut;
from S select k, v output all every 1 sec insert into AllOut;
from S#window.time(2 sec) select k, count() as n group by k output snapshot every 1 sec insert into SnapOut;
partition with (k of S)
begin
  from S#window.length(3) select k, sum(v) as total insert all events into #L;
  from #L select k, total output last every 2 events insert into PartOut;
  from S#window.lengthBatch(2) select k, max(v) as top insert into PartBatch;
end;
`

// TestPartitionedRatesMatchOneGroup: with the rate limits and the partition CheckApp
// accepts, the outputs of three groups together are, key by key, those of one group.
func TestPartitionedRatesMatchOneGroup(t *testing.T) {
	const groups = 3
	app := windowStreams + rateQueries
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
	steps := windowSteps(400)
	for i, s := range steps {
		index := uint64(i + 1)
		if s.events == nil {
			want.add(one.Tick(index, s.now))
			for _, e := range split {
				got.add(e.Tick(index, s.now))
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
			got.add(outs)
		}
	}
	last := steps[len(steps)-1].now + 10_000
	want.add(one.Tick(uint64(len(steps)+1), last))
	for _, e := range split {
		got.add(e.Tick(uint64(len(steps)+1), last))
	}
	for _, stream := range []string{"LastOut", "FirstOut", "AllOut", "SnapOut", "PartOut", "PartBatch"} {
		t.Run(stream, func(t *testing.T) {
			if len(want[stream]) < 12 {
				t.Fatalf("one engine: outputs for %d keys, want all 12: the sequence does not exercise the query", len(want[stream]))
			}
			for _, k := range slices.Sorted(mapsKeys(want[stream], got[stream])) {
				w, g := want[stream][k], got[stream][k]
				if i := firstDiff(w, g); i >= 0 {
					t.Errorf("key %s: %d outputs from one group, %d from %d groups; first difference at output %d:\n one: %s\n %d groups: %s",
						k, len(w), len(g), groups, i, at(w, i), groups, at(g, i))
				}
			}
		})
	}
}
