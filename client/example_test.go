package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tally-db/tally/client"
)

// Publish events exactly once, then query the aggregation they feed, reading what was
// just written.
func Example() {
	ctx := context.Background()
	// addr is a node's base URL, such as "http://127.0.0.1:7070"; give several nodes to
	// spread requests and fail over.
	c, err := client.New([]string{addr}, client.Options{Timeout: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Deploy(ctx, `@app:name('Shop')
define stream Sales (item string, amount long, ts long);
define aggregation SalesTotals
  from Sales
  select item, sum(amount) as total, count() as n
  group by item
  aggregate by ts every sec ... year;`)
	if err != nil {
		log.Fatal(err)
	}

	p, err := c.Publisher("Sales", client.PublisherOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, amount := range []int64{10, 20, 30} {
		ev := map[string]any{"item": "tea", "amount": amount, "ts": int64(1767225600000)}
		if err := p.Add(ctx, ev); err != nil {
			log.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil { // sends what is left and waits for it
		log.Fatal(err)
	}

	res, err := c.Query(ctx, "Shop", `from SalesTotals within 0L, 9999999999999L per "years" select item, total, n`,
		client.QueryOptions{MinIndex: p.Indexes()})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Records {
		fmt.Printf("%v: %v sold in %v sales\n", r[0], r[1], r[2])
	}
	// Output:
	// tea: 60 sold in 3 sales
}

// Follow a query's outputs; a dropped connection is resumed where it stopped.
func ExampleClient_Subscribe() {
	ctx := context.Background()
	c, err := client.New([]string{addr}, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Deploy(ctx, `@app:name('Watch')
define stream Temps (room string, celsius double);
from Temps[celsius > 30.0]
select room, celsius
insert into Hot;`)
	if err != nil {
		log.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "Hot", "") // "" follows new outputs; or the last ID you have
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	p, err := c.Publisher("Temps", client.PublisherOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range []string{`{"room":"a","celsius":21.5}`, `{"room":"b","celsius":31.0}`} {
		if err := p.Add(ctx, []byte(ev)); err != nil {
			log.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}

	out, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Stream, string(out.Data))
	// Output:
	// Hot {"room":"b","celsius":31.0}
}
