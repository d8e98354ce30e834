package partition

import (
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

const streams = `
@distribution(strategy='partitioned', partitionKey='symbol')
define stream PartStream (symbol string, price double, volume long);
define stream TradeStream (symbol string, price double, volume long);
@distribution(strategy='broadcast')
define stream RateStream (currency string, rate double);
`

func TestCheckApp(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  string // appended to streams
		// want is "" for accepted, else line:col and substrings of the message.
		wantPos string
		want    []string
	}{
		{name: "no queries", app: ``},
		{name: "time window over partitioned", app: `
from PartStream#window.time(10 sec) select symbol, sum(volume) as v group by symbol insert into Out;`},
		{name: "aligned time batch over partitioned", app: `
from PartStream#window.timeBatch(1 min, 0) select symbol, sum(volume) as v group by symbol insert into Out;`},
		{name: "time window over partitioned without aggregates", app: `
from PartStream#window.time(1 min) select symbol, volume insert all events into Out;`},
		{
			name: "count window over partitioned", app: `
from PartStream#window.length(10) select symbol, sum(volume) as v group by symbol insert into Out;`,
			wantPos: "8:1",
			want:    []string{"query 1 keeps a length window over stream PartStream, which is partitioned by symbol", "holds the last n events of the stream, whatever their key", "Use window.time(t) or window.timeBatch(t, startTime)"},
		},
		{
			name: "time batch without a start time over partitioned", app: `
from PartStream#window.timeBatch(1 min) select symbol, sum(volume) as v group by symbol insert into Out;`,
			wantPos: "8:1",
			want:    []string{"timeBatch window", "batches start at the first event the group sees"},
		},
		{
			name: "aggregates over partitioned without group by the key", app: `
from PartStream#window.time(1 min) select sum(volume) as v insert into Out;`,
			wantPos: "8:1",
			want:    []string{"query 1 aggregates over stream PartStream, which is partitioned by symbol, without grouping by symbol", "Add symbol to the group by"},
		},
		{name: "stateless query over roundRobin", app: `
from TradeStream[price > 10] select symbol, price insert into Big;`},
		{name: "aggregation over roundRobin", app: `
define aggregation TradeAgg from TradeStream select symbol, sum(price) as total group by symbol aggregate every sec ... year;`},
		{name: "aggregation over partitioned", app: `
define aggregation TradeAgg from PartStream select symbol, sum(price) as total group by symbol aggregate every sec ... year;`},
		{name: "window over an implicit stream", app: `
from TradeStream[price > 10] select symbol, price insert into Big;
from Big#window.length(5) select symbol, max(price) as p group by symbol insert into Out;`},
		{name: "broadcast stream nobody reads", app: `
from PartStream select symbol insert into Out;`},
		{
			name: "window over roundRobin, named", app: `
from PartStream select symbol insert into Out;
@info(name='bigTrades')
from TradeStream#window.length(10) select symbol, sum(volume) as v group by symbol insert into Out2;`,
			wantPos: "10:1",
			want: []string{
				"query 2 (bigTrades) keeps a window over stream TradeStream, which is routed roundRobin",
				"with 3 groups each group would see an arbitrary part of the stream",
				"Declare @distribution(strategy='partitioned', partitionKey='symbol') on TradeStream",
			},
		},
		{
			name: "running aggregates over roundRobin", app: `
from TradeStream select symbol, sum(volume) as v group by symbol having v > 10 insert into Out;`,
			wantPos: "8:1",
			want:    []string{"query 1 keeps running aggregates over stream TradeStream, which is routed roundRobin", "partitionKey='symbol'"},
		},
		{
			name: "window over roundRobin, unnamed, no group by", app: `
from TradeStream#window.time(1 min) select sum(volume) as v insert into Out;`,
			wantPos: "8:1",
			want:    []string{"query 1 keeps a window over stream TradeStream", "partitionKey='...'"},
		},
		{
			name: "query over broadcast", app: `
@info(name = 'conv')
from RateStream select currency, rate * 2 as r insert into Out;`,
			wantPos: "9:1",
			want: []string{
				"query 1 (conv) reads stream RateStream, which is routed broadcast",
				"emitted 3 times", "multiplied by 3",
				"Route RateStream with strategy='partitioned' (@distribution(strategy='partitioned', partitionKey='...')) or strategy='roundRobin' instead",
			},
		},
		{
			name: "windowed query over broadcast suggests partitioned only", app: `
from RateStream#window.length(3) select currency, avg(rate) as r group by currency insert into Out;`,
			wantPos: "8:1",
			want:    []string{"query 1 reads stream RateStream, which is routed broadcast", "partitionKey='currency'))"},
		},
		{
			name: "aggregation over broadcast", app: `
define aggregation RateAgg from RateStream select currency, sum(rate) as total group by currency aggregate every sec ... hour;`,
			wantPos: "8:1",
			want: []string{
				"aggregation RateAgg reads stream RateStream, which is routed broadcast",
				"every count and sum would come out 3 times too large",
				"partitionKey='currency'",
			},
		},
		{
			name: "first offence in the text wins", app: `
from PartStream select symbol insert into Out;
define aggregation RateAgg from RateStream select currency, sum(rate) as total group by currency aggregate every sec ... hour;
from TradeStream#window.length(2) select symbol insert into Out2;`,
			wantPos: "9:1",
			want:    []string{"aggregation RateAgg"},
		},
		{
			name: "first offence in the text wins, query first", app: `
from TradeStream#window.length(2) select symbol insert into Out2;
define aggregation RateAgg from RateStream select currency, sum(rate) as total group by currency aggregate every sec ... hour;`,
			wantPos: "8:1",
			want:    []string{"query 1 keeps a window over stream TradeStream"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := mustParse(t, streams+tc.app)
			err := CheckApp(app, 3)
			if tc.wantPos == "" {
				if err != nil {
					t.Fatalf("CheckApp: %v", err)
				}
			} else {
				var se *siddhiql.Error
				if !errors.As(err, &se) {
					t.Fatalf("CheckApp = %v (%T), want a *siddhiql.Error", err, err)
				}
				if se.Pos.String() != tc.wantPos {
					t.Errorf("error at %s, want %s: %v", se.Pos, tc.wantPos, err)
				}
				for _, w := range tc.want {
					if !strings.Contains(se.Msg, w) {
						t.Errorf("error %q\ndoes not contain %q", se.Msg, w)
					}
				}
				t.Log(err)
			}
			// One group accepts everything.
			if err := CheckApp(app, 1); err != nil {
				t.Errorf("CheckApp with 1 group: %v", err)
			}
		})
	}
	if err := CheckApp(nil, 3); err != nil {
		t.Errorf("CheckApp(nil): %v", err)
	}
}

// The full message of the roundRobin case, as the brief and the docs show it.
func TestCheckAppMessage(t *testing.T) {
	app := mustParse(t, streams+`
from PartStream select symbol insert into Out;
@info(name='bigTrades')
from TradeStream#window.length(10) select symbol, sum(volume) as v group by symbol insert into Out2;`)
	want := "siddhiql: 10:1: query 2 (bigTrades) keeps a window over stream TradeStream, which is routed roundRobin: " +
		"with 3 groups each group would see an arbitrary part of the stream, so the window's contents would depend " +
		"on which group an event happened to reach. Declare @distribution(strategy='partitioned', partitionKey='symbol') on TradeStream"
	if err := CheckApp(app, 3); err == nil || err.Error() != want {
		t.Errorf("CheckApp =\n%v\nwant\n%s", err, want)
	}
}
