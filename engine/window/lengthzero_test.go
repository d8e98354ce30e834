package window

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// compileText parses an app with one stream and one query and compiles the query.
func compileText(t *testing.T, text string) error {
	t.Helper()
	app, err := siddhiql.Parse(text)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	_, err = Compile(app.Queries[0], app.Streams[0])
	return err
}

// Siddhi takes window parameters only as literals: an expression of constants is refused,
// as its LengthBatchWindowTestCase 19-20 and TimeBatchWindowTestCase expect.
func TestWindowParamsMustBeLiterals(t *testing.T) {
	const head = "@app:name('W') define stream S (symbol string, price float, volume int);\n"
	bad := []struct{ q, msg string }{
		{"from S#window.timeBatch(1 sec, 1/2) select symbol insert into O;", "2:33: window timeBatch: 2nd argument must be a constant, found (1 / 2)"},
		{"from S#window.timeBatch(1 sec, 0, 1/2) select symbol insert into O;", "stream.current.event must be a constant"},
		{"from S#window.lengthBatch(1/2) select symbol insert into O;", "window.length must be a constant"},
		{"from S#window.lengthBatch(4, 1/2) select symbol insert into O;", "stream.current.event must be a constant"},
		{"from S#window.length(2 + 2) select symbol insert into O;", "window.length must be a constant"},
		{"from S#window.lengthBatch(-1) select symbol insert into O;", "must not be negative"},
	}
	for _, c := range bad {
		err := compileText(t, head+c.q)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want one containing %q", c.q, err, c.msg)
		}
	}
	for _, q := range []string{
		"from S#window.lengthBatch(0) select symbol insert into O;",
		"from S#window.timeBatch(1 min 30 sec, -5L) select symbol insert into O;",
	} {
		if err := compileText(t, head+q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// lengthBatch(0) passes each event through: current, expired (when asked for), reset.
func TestLengthBatchZero(t *testing.T) {
	app, err := siddhiql.Parse("@app:name('W') define stream S (symbol string, volume int);\n" +
		"from S#window.lengthBatch(0) select symbol, sum(volume) as total insert all events into O;")
	if err != nil {
		t.Fatal(err)
	}
	q, err := Compile(app.Queries[0], app.Streams[0])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	emit := func(o Output) { got = append(got, o.Kind.String()+" "+o.Row[0].S+" "+o.Row[1].String()) }
	q.Process(10, []expr.Row{{expr.String("IBM"), expr.Int(3)}, {expr.String("WSO2"), expr.Int(4)}}, emit)
	want := []string{"EXPIRED IBM null", "EXPIRED WSO2 null"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("outputs %q, want %q", got, want)
	}
}
