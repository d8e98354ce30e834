package partition

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

func TestCheckApp_TablesAndJoins(t *testing.T) {
	const head = `@app:name('A')
@distribution(strategy='partitioned', partitionKey='k')
define stream S (k string, v long);
@primaryKey('k')
define table T (k string, v long);
`
	for _, c := range []struct{ name, q, err string }{
		{"insert", "from S insert into T;", "query 1 writes table T"},
		{"upsert", "from S update or insert into T on T.k == k;", "query 1 writes table T"},
		{"delete", "from S delete T on T.k == k;", "query 1 writes table T"},
		{"in", "from S[(T.k == k) in T] insert into O;", "query 1 reads table T ('in T')"},
		{"in select", "from S select k, (T.k == k) in T as known insert into O;", "query 1 reads table T ('in T')"},
		{"join", "from S join T on S.k == T.k select S.k, T.v insert into O;", "query 1 joins S with T"},
	} {
		t.Run(c.name, func(t *testing.T) {
			app, err := siddhiql.Parse(head + c.q)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckApp(app, 1); err != nil {
				t.Errorf("one group: %v", err)
			}
			err = CheckApp(app, 3)
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "6:1") {
				t.Errorf("three groups: error %v, want %q at 6:1", err, c.err)
			}
		})
	}
	app, err := siddhiql.Parse(head + "from S[v > 1] insert into O;")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckApp(app, 3); err != nil {
		t.Errorf("an app that defines a table but does not touch it was refused: %v", err)
	}
}
