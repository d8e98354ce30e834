package store

import (
	"fmt"
	"maps"
	"testing"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// tradeApp is the seed app: event-time mode, every granularity.
const tradeApp = `define stream TradeStream (symbol string, price double, quantity long, timestamp long);
define aggregation TradeAggregation from TradeStream
  select symbol, avg(price) as avgPrice, sum(quantity) as total
  group by symbol
  aggregate by timestamp every sec ... year;`

// mixedApp is arrival-time mode with every column type, latest values and every base kind.
const mixedApp = `define stream Reading (name string, region string, ok bool, flag bool, i int, l long, f float, d double, o object);
define aggregation MixedAgg from Reading
  select name, ok, region as lastRegion, i as lastI, l as lastL, f as lastF, d as lastD, o as lastO, flag as lastFlag,
    count() as n, sum(i) as sumI, sum(f) as sumF, avg(d) as avgD, min(i) as minI, max(l) as maxL, min(f) as minF, max(d) as maxD,
    distinctCount(region) as regions
  group by name, ok
  aggregate every sec ... hour;`

// compile parses app and compiles its aggregation name.
func compile(t *testing.T, app, name string) *agg.Def {
	t.Helper()
	a, err := siddhiql.Parse(app)
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range a.Aggregations {
		if ad.Name != name {
			continue
		}
		for _, sd := range a.Streams {
			if sd.Name == ad.From {
				def, err := agg.Compile(ad, sd)
				if err != nil {
					t.Fatal(err)
				}
				return def
			}
		}
	}
	t.Fatalf("no aggregation %s", name)
	return nil
}

func newState(t *testing.T, def *agg.Def) *agg.State {
	t.Helper()
	clock, err := agg.NewClock("")
	if err != nil {
		t.Fatal(err)
	}
	return agg.NewState(def, clock)
}

func add(t *testing.T, s *agg.State, index uint64, now int64, events ...expr.Row) {
	t.Helper()
	if err := s.Add(index, now, events); err != nil {
		t.Fatal(err)
	}
}

func trade(symbol string, price float64, qty, ts int64) expr.Row {
	return expr.Row{expr.String(symbol), expr.Double(price), expr.Long(qty), expr.Long(ts)}
}

// reading is an event of mixedApp; nil pointers are nulls.
func reading(name string, region *string, ok, flag bool, i *int32, l *int64, f *float32, d *float64, o *string) expr.Row {
	r := expr.Row{expr.String(name), expr.Null, expr.Bool(ok), expr.Bool(flag), expr.Null, expr.Null, expr.Null, expr.Null, expr.Null}
	if region != nil {
		r[1] = expr.String(*region)
	}
	if i != nil {
		r[4] = expr.Int(*i)
	}
	if l != nil {
		r[5] = expr.Long(*l)
	}
	if f != nil {
		r[6] = expr.Float(*f)
	}
	if d != nil {
		r[7] = expr.Double(*d)
	}
	if o != nil {
		r[8] = expr.Value{T: siddhiql.TypeObject, S: *o}
	}
	return r
}

func ptr[T any](v T) *T { return &v }

// rowDiff describes how got differs from want, or is "" when they are the same row.
func rowDiff(def *agg.Def, want, got *agg.Row) string {
	if want.AggTimestamp != got.AggTimestamp || want.EventTimestamp != got.EventTimestamp {
		return fmt.Sprintf("timestamps (%d, %d), want (%d, %d)", got.AggTimestamp, got.EventTimestamp, want.AggTimestamp, want.EventTimestamp)
	}
	if want.GroupKey() != got.GroupKey() {
		return fmt.Sprintf("group key %q, want %q", got.GroupKey(), want.GroupKey())
	}
	if d := valuesDiff("group", want.Group, got.Group); d != "" {
		return d
	}
	if d := valuesDiff("latest", want.Latest, got.Latest); d != "" {
		return d
	}
	if want.LastEventTimestamp != got.LastEventTimestamp {
		return fmt.Sprintf("last event timestamp %d, want %d", got.LastEventTimestamp, want.LastEventTimestamp)
	}
	if d := valuesDiff("bases", want.Bases, got.Bases); d != "" {
		return d
	}
	for i, b := range def.Bases {
		if b.Kind != agg.BaseSet {
			continue
		}
		if !maps.Equal(want.Sets[i], got.Sets[i]) {
			return fmt.Sprintf("set %s = %q, want %q", b.Name, agg.SetMembers(got.Sets[i]), agg.SetMembers(want.Sets[i]))
		}
	}
	if want.Index != got.Index {
		return fmt.Sprintf("index %d, want %d", got.Index, want.Index)
	}
	return ""
}

func valuesDiff(what string, want, got []expr.Value) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%s has %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !expr.Equal(want[i], got[i]) {
			return fmt.Sprintf("%s[%d] = %#v, want %#v", what, i, got[i], want[i])
		}
	}
	return ""
}

// rowsOf drops the shard IDs.
func rowsOf(srs []ShardRow) []*agg.Row {
	out := make([]*agg.Row, len(srs))
	for i, sr := range srs {
		out[i] = sr.Row
	}
	return out
}
