package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// TestCheckEvents_StringLengths: a string longer than the table column it feeds is refused
// at ingest (the 300-character group-by value that MySQL's VARCHAR(254) could not hold),
// naming the stream, event, attribute and limit; field.length changes the limit.
func TestCheckEvents_StringLengths(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	long := strings.Repeat("x", 300)
	ok := strings.Repeat("é", 254) // characters, not bytes
	if err := e.CheckEvents("TradeStream", []expr.Row{trade(ok, 1, 1, 1000)}); err != nil {
		t.Fatalf("254 characters: %v", err)
	}
	err := e.CheckEvents("TradeStream", []expr.Row{trade("a", 1, 1, 1000), trade(long, 1, 1, 1000)})
	if !errors.Is(err, ErrBadEvent) {
		t.Fatalf("300 characters: err = %v, want ErrBadEvent", err)
	}
	for _, want := range []string{"event 1 of stream TradeStream", "attribute symbol is 300 characters long", "more than the 254", "aggregation TradeAggregation"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Apply keeps applying what the log holds: lengths are an ingest check.
	if _, err := e.Apply(1, 1000, "TradeStream", []expr.Row{trade(long, 1, 1, 1000)}); err != nil {
		t.Errorf("Apply refused an entry already in the log: %v", err)
	}

	const app = `@app:name('L')
define stream In (k string, v string, n long);
@store(type='rdbms', field.length="k:10, last:4, SHARD_ID:20, notAColumn:3")
define aggregation A from In[n > 0] select k, v as last, sum(n) as total group by k aggregate every sec;`
	e = newEngine(t, "", app)
	row := func(k, v string, n int64) expr.Row { return expr.Row{expr.String(k), expr.String(v), expr.Long(n)} }
	for _, tc := range []struct {
		name string
		ev   expr.Row
		want string // "" means accepted
	}{
		{"fits", row("0123456789", "abcd", 1), ""},
		{"group-by", row("0123456789a", "abcd", 1), "attribute k is 11 characters long, more than the 10"},
		{"latest value", row("k", "abcde", 1), "output last is 5 characters long, more than the 4"},
		{"filtered out", row(long, long, 0), ""},
		{"null latest value", expr.Row{expr.String("k"), expr.Null, expr.Long(1)}, ""},
	} {
		err := e.CheckEvents("In", []expr.Row{tc.ev})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	a, _ := e.App("L")
	if d := a.Aggregations()[0]; d.ShardLength != 20 || d.GroupBy[0].Length != 10 || d.Latest[0].Length != 4 {
		t.Errorf("lengths: shard %d, k %d, last %d", d.ShardLength, d.GroupBy[0].Length, d.Latest[0].Length)
	}
}

// TestDeploy_DuplicateTables: a second aggregation mapping to an existing aggregation's
// store tables, in another app and any letter case, is refused naming the app that owns
// them (the finding: the second app overwrote the first's table). Redeploying the owner
// stays allowed, and a state holding such a pair (written before the check) still restores.
func TestDeploy_DuplicateTables(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	other := func(app, agg string) string {
		return "@app:name('" + app + "')\ndefine stream S2 (symbol string, quantity long);\n" +
			"define aggregation " + agg + " from S2 select symbol, sum(quantity) as total group by symbol aggregate every sec;"
	}
	for _, name := range []string{"TradeAggregation", "tradeAggregation", "TRADEAGGREGATION"} {
		_, err := e.Deploy(other("Other", name))
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "aggregation TradeAggregation of app TradeApp") {
			t.Errorf("%s: err = %v, want ErrConflict naming TradeApp", name, err)
		}
	}
	if _, ok := e.App("Other"); ok {
		t.Fatal("a refused app was deployed")
	}
	if _, err := e.Deploy(strings.Replace(tradeApp, "every sec ... year", "every sec ... day", 1)); err != nil {
		t.Errorf("redeploying the owner: %v", err)
	}
	_, err := e.Deploy(other("Twice", "A") + "\ndefine aggregation a from S2 select symbol, sum(quantity) as total group by symbol aggregate every sec;")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "aggregations A and a of app Twice") {
		t.Errorf("two aggregations of one app differing in case: err = %v", err)
	}

	// A state written before the check existed restores.
	old, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Deploy(tradeApp); err != nil {
		t.Fatal(err)
	}
	clash, err := (&Engine{clock: old.clock, apps: map[string]*App{}, inputs: map[string]*App{}}).Deploy(other("Other", "tradeAggregation"))
	if err != nil {
		t.Fatal(err)
	}
	old.apps[clash.Name] = clash
	for _, s := range clash.plainInputs() {
		old.inputs[s] = clash
	}
	data, err := old.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored, _ := New(Config{})
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatalf("restore a state with clashing tables: %v", err)
	}
	if len(restored.Apps()) != 2 {
		t.Errorf("restored %d apps, want 2", len(restored.Apps()))
	}
}

// BenchmarkCheckEvents measures the ingest check of a 1,000-event batch of the trade app,
// with the string-length check (CheckEvents) and without it (the check Apply makes).
func BenchmarkCheckEvents(b *testing.B) {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Deploy(tradeApp); err != nil {
		b.Fatal(err)
	}
	events := make([]expr.Row, 1000)
	for i := range events {
		events[i] = trade(strings.Repeat("s", i%40), float64(i), int64(i), 1514783400000+int64(i))
	}
	for _, bc := range []struct {
		name  string
		check func(string, []expr.Row) error
	}{{"with-lengths", e.CheckEvents}, {"without", e.checkApply}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if err := bc.check("TradeStream", events); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
