package partition

import (
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

func TestCheckApp_RatesTriggersPartitions(t *testing.T) {
	for _, tc := range []struct {
		name, app string
		wantPos   string // "" when accepted
		want      []string
	}{
		{name: "last every T grouped by the key", app: `
from PartStream select symbol, price group by symbol output last every 1 min insert into Out;`},
		{name: "first every N events grouped by the key", app: `
from PartStream select symbol, price group by symbol output first every 5 events insert into Out;`},
		{name: "all every T over roundRobin", app: `
from TradeStream select symbol, price output every 10 sec insert into Out;`},
		{name: "snapshot grouped by the key", app: `
from PartStream#window.time(1 min) select symbol, count() as n group by symbol output snapshot every 5 sec insert into Out;`},
		{
			name: "last every T without group by", app: `
from PartStream select symbol, price output last every 1 min insert into Out;`,
			wantPos: "8:38",
			want:    []string{"query 1 limits its output with 'output last every 1 min' over stream PartStream, which is routed partitioned", "group by symbol with output first every <n> events"},
		},
		{
			name: "last every N events grouped by the key", app: `
from PartStream select symbol, price group by symbol output last every 3 events insert into Out;`,
			wantPos: "8:54",
			want:    []string{"'output last every 3 events'"},
		},
		{
			name: "first every N events over roundRobin", app: `
from TradeStream select symbol output first every 3 events insert into Out;`,
			wantPos: "8:32",
			want:    []string{"routed roundRobin", "Use output all every <time>"},
		},
		{
			name: "query reading a trigger", app: `
define trigger T at every 1 min;
from T select triggered_time insert into Ticks;`,
			wantPos: "9:1",
			want:    []string{"query 1 reads trigger T: every one of the 3 groups fires its own trigger events"},
		},
		{name: "partition by the partition key", app: `
partition with (symbol of PartStream) begin
  from PartStream#window.length(3) select symbol, sum(volume) as v insert into #L;
  from #L select symbol, v output last every 2 events insert into Out;
end;`},
		{name: "partition of a query's output", app: `
from TradeStream select symbol, price insert into Derived;
partition with (symbol of Derived) begin from Derived#window.length(2) select symbol, count() as n insert into Out; end;`},
		{
			name: "partition by another attribute", app: `
partition with (price of PartStream) begin from PartStream select symbol insert into Out; end;`,
			wantPos: "8:17",
			want:    []string{"partition with (... of PartStream) does not partition PartStream by its partition key (it is routed partitioned)", "Partition with (symbol of PartStream)"},
		},
		{
			name: "range partition", app: `
partition with (price < 10 as 'low' or price >= 10 as 'high' of PartStream) begin from PartStream select symbol insert into Out; end;`,
			wantPos: "8:17",
			want:    []string{"does not partition PartStream by its partition key"},
		},
		{
			name: "partition over roundRobin", app: `
partition with (symbol of TradeStream) begin from TradeStream select symbol insert into Out; end;`,
			wantPos: "8:17",
			want:    []string{"it is routed roundRobin"},
		},
		{
			name: "partition reading an unpartitioned stream", app: `
partition with (symbol of PartStream) begin
  from PartStream select symbol insert into Out;
  from TradeStream select symbol insert into Out2;
end;`,
			wantPos: "10:3",
			want:    []string{"reads stream TradeStream, which the partition does not partition"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := mustParse(t, streams+tc.app)
			if err := CheckApp(app, 1); err != nil {
				t.Fatalf("one group: %v", err)
			}
			err := CheckApp(app, 3)
			if tc.wantPos == "" {
				if err != nil {
					t.Fatalf("CheckApp: %v", err)
				}
				return
			}
			var se *siddhiql.Error
			if !errors.As(err, &se) {
				t.Fatalf("CheckApp = %v, want a *siddhiql.Error", err)
			}
			if se.Pos.String() != tc.wantPos {
				t.Errorf("position %s, want %s (%s)", se.Pos, tc.wantPos, se.Msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(se.Msg, w) {
					t.Errorf("message %q lacks %q", se.Msg, w)
				}
			}
		})
	}
}
