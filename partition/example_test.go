package partition_test

import (
	"fmt"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/siddhiql"
)

func Example() {
	app, err := siddhiql.Parse(`
@distribution(strategy='partitioned', partitionKey='symbol')
define stream TradeStream (symbol string, price double);
define stream LogStream (line string);
from TradeStream#window.time(10 sec) select symbol, avg(price) as p group by symbol insert into Out;
`)
	if err != nil {
		panic(err)
	}
	if err := partition.CheckApp(app, 3); err != nil {
		panic(err)
	}
	trades := app.Streams[0]
	r := partition.NewRouter(3)

	events := []expr.Row{
		{expr.String("IBM"), expr.Double(101)},
		{expr.String("wso2"), expr.Double(55)},
		{expr.String("IBM"), expr.Double(102)},
		{expr.String("foobar"), expr.Double(7)},
	}
	for _, p := range r.Route(trades.Routing, partition.KeyIndex(trades), events) {
		fmt.Println("group", p.Group, p.Events)
	}

	// roundRobin: each request, whole, to the next group.
	logs := app.Streams[1]
	for range 2 {
		for _, p := range r.Route(logs.Routing, partition.KeyIndex(logs), []expr.Row{{expr.String("hello")}}) {
			fmt.Println("log request to group", p.Group)
		}
	}
	// Output:
	// group 0 [["wso2" 55.0]]
	// group 1 [["foobar" 7.0]]
	// group 2 [["IBM" 101.0] ["IBM" 102.0]]
	// log request to group 0
	// log request to group 1
}
