package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

func TestDeploy_TableAndJoinErrors(t *testing.T) {
	const head = `@app:name('E')
define stream S (k string, v long);
define stream U (k string, w long);
define table T (k string, v long);
define table T2 (k string, v long);
define aggregation A from S select k, sum(v) as total group by k aggregate every sec;
`
	for _, c := range []struct{ name, q, err string }{
		{"read table", "from T select k insert into O;", "6:1... query reads table T"},
		{"update a stream", "from S update U on U.k == k;", "is not a table of this app"},
		{"insert wrong types", "from U select w, k insert into T;", "query output 1 (w) is long but attribute k of table T is string"},
		{"insert wrong width", "from S select k insert into T;", "query outputs 1 attributes but table T has 2"},
		{"set unknown", "from S update T set T.nope = v on T.k == k;", `set: table T has no attribute "nope"`},
		{"set wrong type", "from S update T set T.v = k on T.k == k;", "set: k is string but attribute v of table T is long"},
		{"set narrowing", "from S update T set T.v = v * 1.5 on T.k == k;", "set: (v * 1.5) is double but attribute v of table T is long"},
		{"condition not bool", "from S delete T on T.v + v;", "needs a bool condition, got long"},
		{"unknown in table", "from S[(X.k == k) in X] insert into O;", "X is not a table of this app"},
		{"in in a join", "from S#window.length(1) join U#window.length(1) on S.k == U.k select (T.k == S.k) in T as b insert into O;", "'in T' (a table lookup) is not supported here"},
		{"two tables", "from T join T2 on T.k == T2.k select T.k insert into O;", "a join needs a stream"},
		{"table window", "from S join T#window.length(1) on S.k == T.k select S.k insert into O;", "it cannot have a window"},
		{"table unidirectional", "from S join T unidirectional on S.k == T.k select S.k insert into O;", "cannot trigger the join"},
		{"aggregation span", "from S join A on S.k == A.k within 0L, 1000000L per 'seconds' select S.k insert into O;", "more than the 120 seconds buckets"},
		{"aggregation no within", "from S join A on S.k == A.k select S.k insert into O;", "needs 'within start, end per"},
		{"unknown input", "from S join Nope select S.k insert into O;", "join reads Nope"},
		{"ambiguous", "from S#window.length(1) join U#window.length(1) on k == 'a' select S.k insert into O;", `attribute "k" is in both S and U`},
		{"select all duplicate", "from S#window.length(1) join U#window.length(1) select * insert into O;", `duplicate output attribute "k"`},
		{"defined twice", "define table S (a int);", "is already defined"},
		{"self join without aliases", "from S#window.length(1) join S#window.length(2) on S.k == 'a' select v insert into O;", "S names both inputs"},
		{"loop without window", "from S join T on S.k == T.k select S.k, S.v insert into S;", "queries feed stream S back into itself"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, _ := New(Config{})
			_, err := e.CheckDeploy(head + c.q)
			want := c.err
			if i := strings.Index(want, "... "); i >= 0 {
				want = want[i+4:]
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want %q", err, want)
			}
			if !strings.Contains(err.Error(), "siddhiql: 7:") && !strings.Contains(err.Error(), "siddhiql: 6:") {
				t.Errorf("error %v does not carry the line:column of the query", err)
			}
		})
	}
}

// TestTable_UpsertSetReadsOldRow: the real apps' counter shape, `set T.n = T.n + n`.
func TestTable_UpsertSetReadsOldRow(t *testing.T) {
	e := newEngine(t, "", `@app:name('C')
define stream S (user string, key string, n long);
define stream Q (user string, key string);
@PrimaryKey('key', 'user')
define table Counts (user string, key string, n long);
from S select *
update or
insert into Counts
set Counts.n = Counts.n + n
  on Counts.key == key and Counts.user == user;
from Q#window.length(1) as R join Counts as T on (R.key == T.key and R.user == T.user)
select R.user, T.n insert into Out;
`)
	for i, n := range []int64{5, 7, 100} {
		mustApply(t, e, uint64(i+1), int64(1000+i), "S", expr.Row{expr.String("u"), expr.String("k"), expr.Long(n)})
	}
	out, err := e.Apply(9, 2000, "Q", []expr.Row{{expr.String("u"), expr.String("k")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Row[1].I != 112 {
		t.Fatalf("outputs %v, want one with n = 112", out)
	}
	app, _ := e.App("C")
	tb, _ := app.Table("Counts")
	if tb.Len() != 1 {
		t.Errorf("table holds %d rows, want 1", tb.Len())
	}
}

// TestJoin_ExpiredLeaveAggregates: with `insert into` (current events only) the events that
// leave a sliding window still take their part out of the join's aggregates.
func TestJoin_ExpiredLeaveAggregates(t *testing.T) {
	e := newEngine(t, "", `@app:name('J')
define stream A (k string);
define stream B (k string);
from A#window.time(1 sec) join B#window.length(5) on A.k == B.k select count() as n insert into Out;
`)
	x := expr.Row{expr.String("x")}
	mustApply(t, e, 1, 500, "B", x)
	var got []int64
	for i, ts := range []int64{1000, 1500, 2600} {
		for _, o := range mustApply(t, e, uint64(i+2), ts, "A", x) {
			got = append(got, o.Row[0].I)
		}
	}
	if fmt.Sprint(got) != "[1 2 1]" {
		t.Errorf("counts %v, want [1 2 1]: expired events must leave the count", got)
	}
}

// TestIn_SelectAndHaving: `cond in T` also works in select and having.
func TestIn_SelectAndHaving(t *testing.T) {
	e := newEngine(t, "", `@app:name('I')
define stream Add (k string);
define stream Q (k string, n long);
define table T (k string);
from Add insert into T;
from Q select k, (T.k == k) in T as known, count() as c having (T.k == k) in T or c > 2 insert into Out;
`)
	mustApply(t, e, 1, 1000, "Add", expr.Row{expr.String("a")})
	var got []string
	for i, r := range []expr.Row{{expr.String("a"), expr.Long(1)}, {expr.String("b"), expr.Long(1)}, {expr.String("b"), expr.Long(9)}} {
		for _, o := range mustApply(t, e, uint64(i+2), int64(2000+i), "Q", r) {
			got = append(got, fmt.Sprint(o.Row))
		}
	}
	if want := `[["a" true 1] ["b" false 3]]`; fmt.Sprint(got) != want {
		t.Errorf("outputs %v, want %s", got, want)
	}
}

// TestJoin_OtherWindowExpiresFirst: an event meets only what is still live in the other
// input's window, even when no tick moved that window since.
func TestJoin_OtherWindowExpiresFirst(t *testing.T) {
	e := newEngine(t, "", `@app:name('J')
define stream A (k string);
define stream B (k string);
from A#window.time(1 sec) join B#window.time(1 sec) on A.k == B.k select A.k insert into Out;
`)
	x := expr.Row{expr.String("x")}
	mustApply(t, e, 1, 1000, "B", x)
	if out := mustApply(t, e, 2, 1500, "A", x); len(out) != 1 {
		t.Fatalf("a live B event: %d outputs, want 1", len(out))
	}
	if out := mustApply(t, e, 3, 2500, "A", x); len(out) != 0 {
		t.Errorf("B's event expired at 2000 but A's event at 2500 still joined it: %v", out)
	}
}
