package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

const pubApp = `@app:name('Pub')
define stream In (symbol string, price double);
@sink(type='inMemory', topic='Prices')
define stream Out (symbol string, price double);
from In[price > 0] select symbol, price insert into Out;`

const subApp = `@app:name('Sub')
@source(type='inMemory', topic='Prices', @map(type='passThrough'))
define stream PriceIn (sym string, p double);
from PriceIn select sym, p * 2 as doubled insert into Doubled;`

func streams(outs []Output) string {
	var b []string
	for _, o := range outs {
		b = append(b, o.App+"/"+o.Stream+string(expr.AppendJSONObject(nil, o.Attrs, o.Row)))
	}
	return strings.Join(b, " ")
}

func TestInMemory_DeliversWithinApply(t *testing.T) {
	e := newEngineApps(t, []string{subApp, pubApp})
	outs, err := e.Apply(1, 1000, "In", []expr.Row{{expr.String("A"), expr.Double(1.5)}, {expr.String("B"), expr.Double(-1)}})
	if err != nil {
		t.Fatal(err)
	}
	want := `Pub/Out{"symbol":"A","price":1.5} Sub/Doubled{"sym":"A","doubled":3.0}`
	if got := streams(outs); got != want {
		t.Errorf("outputs %s\nwant %s", got, want)
	}
	// A sink of type inMemory is not a delivered sink.
	if s := e.Sinks(); len(s) != 0 {
		t.Errorf("inMemory link listed as a sink: %+v", s)
	}
	// Undeploying the subscriber stops delivery; restoring keeps the links.
	e.Undeploy("Sub")
	outs, _ = e.Apply(2, 1001, "In", []expr.Row{{expr.String("C"), expr.Double(2)}})
	if got := streams(outs); got != `Pub/Out{"symbol":"C","price":2.0}` {
		t.Errorf("after undeploy: %s", got)
	}
	if _, err := e.Deploy(subApp); err != nil {
		t.Fatal(err)
	}
	restored, _ := New(Config{})
	if err := restored.UnmarshalBinary(encode(t, e)); err != nil {
		t.Fatal(err)
	}
	outs, _ = restored.Apply(3, 1002, "In", []expr.Row{{expr.String("D"), expr.Double(4)}})
	if got := streams(outs); got != `Pub/Out{"symbol":"D","price":4.0} Sub/Doubled{"sym":"D","doubled":8.0}` {
		t.Errorf("after restore: %s", got)
	}
}

func TestInMemory_DeployErrors(t *testing.T) {
	tests := []struct {
		name      string
		deployed  []string
		app, want string
	}{
		{"schema mismatch on the subscriber", []string{pubApp}, `@app:name('Bad')
@source(type='inMemory', topic='Prices')
define stream X (symbol string, price float);`,
			"siddhiql: 2:1: @source(type='inMemory', topic='Prices') on stream X: its attributes (symbol string, price float) do not match those of stream Out of app Pub, which publishes to the topic (symbol string, price double)"},
		{"schema mismatch on the publisher", []string{subApp}, `@app:name('Bad')
define stream In2 (a int);
@sink(type='inMemory', topic='Prices')
define stream O (a int);
from In2 select a insert into O;`,
			"siddhiql: 3:1: @sink(type='inMemory', topic='Prices') on stream O: its attributes (a int) do not match those of stream PriceIn of app Sub, which subscribes to the topic (sym string, p double)"},
		{"loop between apps", []string{`@app:name('A')
@source(type='inMemory', topic='Y')
define stream AIn (v int);
@sink(type='inMemory', topic='X')
define stream AOut (v int);
from AIn select v insert into AOut;`}, `@app:name('B')
@source(type='inMemory', topic='X')
define stream BIn (v int);
@sink(type='inMemory', topic='Y')
define stream BOut (v int);
from BIn select v insert into BOut;`, "back into itself"},
		{"no topic", nil, `@app:name('Bad')
@sink(type='inMemory')
define stream O (a int);`, "siddhiql: 2:1: @sink(type='inMemory') on stream O needs topic='...'"},
		{"unknown option", nil, `@app:name('Bad')
@source(type='inMemory', topic='T', buffer='3')
define stream O (a int);`, "has no option buffer"},
		{"json map", nil, `@app:name('Bad')
@source(type='inMemory', topic='T', @map(type='json'))
define stream O (a int);`, "only type='passThrough' is supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngineApps(t, tt.deployed)
			if _, err := e.Deploy(tt.app); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant %q", err, tt.want)
			}
			if len(e.Apps()) != len(tt.deployed) {
				t.Error("a refused deploy changed the apps")
			}
		})
	}
}

func TestInMemory_ReachesFollowsTopicsAndPartitions(t *testing.T) {
	e := newEngineApps(t, []string{pubApp, subApp, `@app:name('Part')
define stream P (k string);
partition with (k of P) begin from P select k insert into #I; from #I select k insert into PartOut; end;`})
	if got := fmt.Sprint(e.Reaches("In")); got != "[Doubled Out PriceIn]" {
		t.Errorf("Reaches(In) = %s", got)
	}
	if got := fmt.Sprint(e.Reaches("P")); got != "[PartOut]" {
		t.Errorf("Reaches(P) = %s", got)
	}
}

func TestInMemory_DynamicTopics(t *testing.T) {
	loop := `@app:name('Loop')
@source(type='inMemory', topic='Foo')
define stream FooIn (symbol string, n long);
@sink(type='inMemory', topic='{{symbol}}')
define stream Bar (symbol string, n long);
from FooIn select symbol, n + 1L as n insert into Bar;`
	e := newEngineApps(t, []string{loop})
	// An event whose symbol spells its own source topic goes round until the depth bound.
	outs, err := e.Apply(1, 1000, "FooIn", []expr.Row{{expr.String("Foo"), expr.Long(0)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) == 0 || len(outs) > maxDepth {
		t.Fatalf("a loop through a dynamic topic gave %d outputs, want between 1 and %d", len(outs), maxDepth)
	}
	if last := outs[len(outs)-1].Row[1].I; last != int64(len(outs)) {
		t.Errorf("last hop n = %d, want %d", last, len(outs))
	}
	for _, tt := range []struct{ app, want string }{
		{`@app:name('X')
@sink(type='inMemory', topic='p.{{nope}}')
define stream O (symbol string, n long);`, "2:1: @sink(type='inMemory'): topic \"p.{{nope}}\": {{nope}} is not an attribute of stream O"},
		{`@app:name('X')
@sink(type='inMemory', topic='p.{{symbol')
define stream O (symbol string, n long);`, "has a '{{' without '}}'"},
		{`@app:name('X')
@sink(type='inMemory', topic='F{{symbol}}')
define stream O (symbol string, n int);`, "2:1: @sink(type='inMemory', topic='F{{symbol}}') on stream O: its attributes (symbol string, n int) do not match those of stream FooIn of app Loop, which subscribes to the topic (symbol string, n long)"},
	} {
		if _, err := e.Deploy(tt.app); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v\nwant %q", err, tt.want)
		}
	}
	// A dynamic topic that cannot spell Foo is not checked against it.
	if _, err := e.Deploy(`@app:name('Y')
@sink(type='inMemory', topic='G{{symbol}}')
define stream O2 (symbol string, n int);`); err != nil {
		t.Errorf("a topic that cannot reach Foo: %v", err)
	}
}
