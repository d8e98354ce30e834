package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// sinkApp passes every event of S to Alerts, which has two sinks.
const sinkApp = `@app:name('Al')
define stream S (symbol string, q long);
@sink(type='http', publisher.url='http://127.0.0.1:9/alerts', headers='X-A:1', @map(type='json'))
@sink(type='log')
define stream Alerts (symbol string, t long);
from S select symbol, q as t insert into Alerts;
`

func sinkEv(sym string, q int64) expr.Row { return expr.Row{expr.String(sym), expr.Long(q)} }

// sinkLog deploys sinkApp, then sends n events, one per entry, then a delivered command.
func sinkLog(t testing.TB, n int) []Command {
	cmds := []Command{{Kind: KindDeploy, Time: t0, Text: sinkApp}}
	for i := range n {
		cmds = append(cmds, batch(t0+int64(i), part("S", "", 0, sinkEv("a", int64(i)), sinkEv("b", int64(i)))))
	}
	cmds = append(cmds, Command{Kind: KindDelivered, Time: t0 + int64(n), Text: "Alerts", Sink: 1, Through: OutPos{Index: 3, Seq: 1}})
	return cmds
}

func outputs(t testing.TB, f *FSM, stream string, after OutPos) []OutEntry {
	t.Helper()
	es, err := f.OutputsAfter(stream, after, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestOutbox_Determinism(t *testing.T) {
	logs := logOf(t, 1, sinkLog(t, 20)...)
	a, b := newFSM(t, DefaultConfig()), newFSM(t, DefaultConfig())
	apply(t, a, logs)
	b.ApplyBatch(logs)
	if !bytes.Equal(state(t, a), state(t, b)) {
		t.Fatal("same log, different state")
	}
	es := outputs(t, a, "Alerts", OutPos{})
	if len(es) != 40 {
		t.Fatalf("%d outputs, want 40", len(es))
	}
	if got, want := string(es[0].AppendJSON(nil, 0, "Alerts")), fmt.Sprintf(`{"id":"0-2-0","stream":"Alerts","app":"Al","ts":%d,"expired":false,"data":{"symbol":"a","t":0}}`, t0); got != want {
		t.Errorf("first output\n got %s\nwant %s", got, want)
	}
	sinks := a.Sinks()
	if len(sinks) != 2 || sinks[0].Undelivered != 40 || sinks[1].Undelivered != 36 || sinks[1].Delivered != (OutPos{3, 1}) {
		t.Fatalf("sinks %#v", sinks)
	}
	if sinks[0].URL != "http://127.0.0.1:9/alerts" || len(sinks[0].Headers) != 1 || sinks[0].Type != "http" {
		t.Fatalf("sink 0 %+v", sinks[0].Sink)
	}

	// Snapshot, restore into a fresh FSM, continue both: identical.
	snap := snapshotBytes(t, a)
	c := newFSM(t, DefaultConfig())
	if err := restore(t, c, snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state(t, a), state(t, c)) {
		t.Fatal("restored state differs")
	}
	more := logOf(t, uint64(len(logs)+1),
		batch(t0+100, part("S", "", 0, sinkEv("c", 1))),
		Command{Kind: KindDelivered, Time: t0 + 101, Text: "Alerts", Sink: 0, Through: OutPos{Index: 10, Seq: 0}})
	apply(t, a, more)
	apply(t, c, more)
	if !bytes.Equal(state(t, a), state(t, c)) {
		t.Fatal("restore-and-continue differs from never stopping")
	}
}

func TestOutbox_DeliveredNeverMovesBack(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	apply(t, f, logOf(t, 1, sinkLog(t, 5)...))
	idx := uint64(8)
	for _, through := range []OutPos{{5, 1}, {4, 0}, {5, 0}} {
		res := mustApply(t, f, idx, Command{Kind: KindDelivered, Time: t0 + 50, Text: "Alerts", Sink: 0, Through: through})
		idx++
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if got := f.Sinks()[0].Delivered; got != (OutPos{5, 1}) {
			t.Fatalf("after delivered %v: position %v, want 5-1", through, got)
		}
	}
	if got := f.Sinks()[0].Undelivered; got != 2 {
		t.Errorf("undelivered %d, want 2", got)
	}
	res := mustApply(t, f, idx, Command{Kind: KindDelivered, Time: t0 + 50, Text: "Alerts", Sink: 2, Through: OutPos{9, 9}})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "no sink 2") {
		t.Errorf("unknown sink: err %v", res.Err)
	}
}

func TestOutbox_TrimKeepsRetained(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RetainForSubscribers = 5
	f := newFSM(t, cfg)
	apply(t, f, logOf(t, 1, sinkLog(t, 10)...)) // 20 outputs at indexes 2..11, delivered at 12
	if got := len(outputs(t, f, "Alerts", OutPos{})); got != 20 {
		t.Fatalf("sink 0 delivered nothing, yet %d of 20 outputs kept", got)
	}
	// Sink 0 delivers through 6-1 (10 outputs); sink 1 is at 3-1: 4 are delivered by both.
	mustApply(t, f, 13, Command{Kind: KindDelivered, Time: t0 + 50, Text: "Alerts", Sink: 0, Through: OutPos{6, 1}})
	if _, err := f.OutputsAfter("Alerts", OutPos{}, 100); !errors.Is(err, ErrOutputsGone) {
		t.Fatalf("from the start after a trim: err %v, want ErrOutputsGone", err)
	}
	if got := len(outputs(t, f, "Alerts", OutPos{3, 1})); got != 16 {
		t.Fatalf("%d kept after 3-1, want 16", got)
	}
	// Both deliver everything: the newest 5 stay for subscribers.
	mustApply(t, f, 14, Command{Kind: KindDelivered, Time: t0 + 50, Text: "Alerts", Sink: 0, Through: OutPos{11, 1}})
	mustApply(t, f, 15, Command{Kind: KindDelivered, Time: t0 + 50, Text: "Alerts", Sink: 1, Through: OutPos{11, 1}})
	es := outputs(t, f, "Alerts", OutPos{9, 0})
	if len(es) != 5 || es[0].Pos != (OutPos{9, 1}) {
		t.Fatalf("retained %+v, want the 5 from 9-1", es)
	}
	if _, err := f.OutputsAfter("Alerts", OutPos{8, 1}, 100); !errors.Is(err, ErrOutputsGone) {
		t.Fatalf("err %v, want ErrOutputsGone", err)
	}
	// Undelivered outputs are never trimmed, whatever the retention.
	for i := range 10 {
		mustApply(t, f, uint64(16+i), batch(t0+60, part("S", "", 0, sinkEv("x", 1))))
	}
	if got := f.Sinks()[0].Undelivered; got != 10 {
		t.Fatalf("undelivered %d, want 10", got)
	}
	if got := len(outputs(t, f, "Alerts", OutPos{11, 1})); got != 10 {
		t.Fatalf("%d kept, want the 10 undelivered", got)
	}
}

func TestOutbox_Backpressure(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxUndelivered = 6
	f := newFSM(t, cfg)
	apply(t, f, logOf(t, 1, sinkLog(t, 2)...)) // 4 outputs
	if errs := f.CheckBatch([]Part{part("S", "", 0, sinkEv("a", 1))}); errs != nil {
		t.Fatalf("under the bound: %v", errs)
	}
	mustApply(t, f, 5, batch(t0+10, part("S", "", 0, sinkEv("a", 1), sinkEv("b", 1))))
	errs := f.CheckBatch([]Part{part("S", "", 0, sinkEv("a", 1)), part("Alerts", "", 0, sinkEv("a", 1))})
	if len(errs) != 2 || errs[1] != nil || !errors.Is(errs[0], ErrSinkBacklog) {
		t.Fatalf("over the bound: %v", errs)
	}
	want := "fsm: sink 0 (http http://127.0.0.1:9/alerts) of stream Alerts has 6 undelivered outputs (bound 6): stream S, which feeds it, accepts no input until the sink catches up"
	if errs[0].Error() != want {
		t.Errorf("message\n got %s\nwant %s", errs[0], want)
	}
	mustApply(t, f, 6, Command{Kind: KindDelivered, Time: t0 + 11, Text: "Alerts", Sink: 0, Through: OutPos{2, 0}})
	if errs := f.CheckBatch([]Part{part("S", "", 0, sinkEv("a", 1))}); errs != nil {
		t.Fatalf("after a delivery: %v", errs)
	}
}

func TestOutbox_DeployAndUndeploy(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	apply(t, f, logOf(t, 1, sinkLog(t, 3)...))
	// Redeploy with a third sink: it starts after the outputs already there.
	app3 := strings.Replace(sinkApp, "@sink(type='log')", "@sink(type='log')\n@sink(type='log', prefix='third')", 1)
	if res := mustApply(t, f, 6, Command{Kind: KindDeploy, Time: t0 + 20, Text: app3}); res.Err != nil {
		t.Fatal(res.Err)
	}
	s := f.Sinks()
	if len(s) != 3 || s[2].Delivered != (OutPos{4, 1}) || s[2].Undelivered != 0 || s[2].Prefix != "third" || s[0].Undelivered != 6 {
		t.Fatalf("sinks after redeploy: %+v", s)
	}
	if res := mustApply(t, f, 7, Command{Kind: KindUndeploy, Time: t0 + 20, Text: "Al"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(f.Sinks()) != 0 || len(outputs(t, f, "Alerts", OutPos{})) != 0 {
		t.Fatal("undeploy left the outbox")
	}
}

func TestOutputID(t *testing.T) {
	id := OutPos{Index: 123, Seq: 4}.ID(2)
	if id != "2-123-4" {
		t.Fatal(id)
	}
	g, p, err := ParseOutputID(id)
	if err != nil || g != 2 || p != (OutPos{123, 4}) {
		t.Fatalf("%d %v %v", g, p, err)
	}
	for _, bad := range []string{"", "1-2", "a-1-2", "1-2-3-4", "-1-2-3"} {
		if _, _, err := ParseOutputID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// renderApp outputs every JSON type, escapes and expired events, to two sinks.
const renderApp = `@app:name('R')
define stream In (sym string, price double, n int, ok bool, note string);
@sink(type='log')
@sink(type='log', prefix='second')
define stream Out (sym string, price double, n int, ok bool, note string, total long);
from In#window.length(2) select sym, price, n, ok, note, count() as total insert all events into Out;
`

// renderLog deploys renderApp and sends awkward values, one entry each.
func renderLog() []Command {
	notes := []expr.Value{expr.String(`plain`), expr.String(`q"uo\te`), expr.String("tab\tnl\n\x01"), expr.String("ünï ✓"),
		expr.Null, expr.String(`</script>&`), expr.String("")}
	prices := []float64{0.1, 1e21, math.Copysign(0, -1), 123456789.125, 5e-324, 3}
	cmds := []Command{{Kind: KindDeploy, Time: t0, Text: renderApp}}
	for i := range 24 {
		row := expr.Row{expr.String(fmt.Sprintf("s%d", i%3)), expr.Double(prices[i%len(prices)]), expr.Int(int32(i*7 - 40)),
			expr.Bool(i%2 == 0), notes[i%len(notes)]}
		cmds = append(cmds, batch(t0+int64(i)*10, part("In", "", 0, row)))
	}
	return cmds
}

// TestOutbox_LazySameBytes: outputs kept as rows and rendered when read give the bytes that
// rendering each output inside Apply gave, after later entries, through a snapshot, and in
// the snapshot itself (testdata/snapshot-v2-outbox.golden was written when Apply rendered).
func TestOutbox_LazySameBytes(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	var want []string
	for i, c := range renderLog() {
		res := mustApply(t, f, uint64(i+1), c)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		for _, o := range res.Outputs {
			eager := OutEntry{Pos: OutPos{Index: res.Index, Seq: uint64(o.Seq)}, App: o.App, Expired: o.Expired, Time: o.Time,
				Data: expr.AppendJSONObject(nil, o.Attrs, o.Row)}
			want = append(want, string(eager.AppendJSON(nil, 5, o.Stream)))
		}
	}
	if len(want) < 40 {
		t.Fatalf("only %d outputs", len(want))
	}
	check := func(name string, f *FSM) {
		t.Helper()
		es := outputs(t, f, "Out", OutPos{})
		if len(es) != len(want) {
			t.Fatalf("%s: %d outputs, want %d", name, len(es), len(want))
		}
		for i := range es {
			if got := string(es[i].AppendJSON(nil, 5, "Out")); got != want[i] {
				t.Fatalf("%s: output %d\n got %s\nwant %s", name, i, got, want[i])
			}
			if !bytes.Contains([]byte(want[i]), append(append([]byte(`"data":`), es[i].Data...), '}')) {
				t.Fatalf("%s: output %d: Data %s is not the rendered object", name, i, es[i].Data)
			}
		}
		// Read in pieces, the way sinks and subscriptions do.
		var got []string
		for after := (OutPos{}); ; {
			es := outputs(t, f, "Out", after)
			if len(es) == 0 {
				break
			}
			es = es[:min(len(es), 7)]
			for i := range es {
				got = append(got, string(es[i].AppendJSON(nil, 5, "Out")))
			}
			after = es[len(es)-1].Pos
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: read in pieces, the outputs differ", name)
		}
	}
	check("kept rows", f)

	golden := filepath.Join("testdata", "snapshot-v2-outbox.golden")
	snap := snapshotBytes(t, f)
	if *update {
		if err := os.WriteFile(golden, snap, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, old) {
		t.Fatalf("the snapshot differs from %s (%d bytes, want %d)", golden, len(snap), len(old))
	}
	r := newFSM(t, DefaultConfig())
	if err := restore(t, r, old); err != nil {
		t.Fatal(err)
	}
	check("restored", r)
	if !bytes.Equal(state(t, r), state(t, f)) {
		t.Fatal("the restored state encodes differently")
	}
}
