package fsm

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

const tableApp = `@app:name('W')
define stream WS (symbol string, volume long);
@primaryKey('symbol')
define table WT (symbol string, volume long);
from WS insert into WT;
`

func tableRows(t *testing.T, f *FSM) string {
	t.Helper()
	var out string
	f.Read(func(e View) {
		res, err := e.TableQuery("W", "from WT")
		if err != nil {
			t.Fatal(err)
		}
		out = string(res.AppendJSON(nil, false))
	})
	return out
}

func TestApply_TableWrite(t *testing.T) {
	f := newFSM(t, Config{})
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: tableApp})
	mustApply(t, f, 2, batch(t0, part("WS", "", 0, ev("IBM", 10), ev("WSO2", 20))))
	for i, c := range []struct{ q, err string }{
		{"select 'GOOG' as symbol, 5L as volume insert into WT", ""},
		{"update WT set WT.volume = WT.volume + 1 on WT.symbol == 'IBM'", ""},
		{"select 'WSO2' as symbol, 7L as volume update or insert into WT on WT.symbol == symbol", ""},
		{"delete WT on WT.volume == 5L", ""},
		{"select 1 as symbol insert into WT", "query outputs 1 attributes but table WT has 2"},
		{"delete Nope on 1 == 1", "app W has no table Nope"},
	} {
		res := mustApply(t, f, uint64(3+i), Command{Kind: KindTableWrite, Time: t0, Text: "W", Query: c.q})
		if c.err == "" && res.Err != nil || c.err != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), c.err)) {
			t.Errorf("%s: err %v, want %q", c.q, res.Err, c.err)
		}
	}
	want := `{"records":[["IBM",11],["WSO2",7]]}`
	if got := tableRows(t, f); got != want {
		t.Fatalf("table = %s, want %s", got, want)
	}
	// The writes are in the snapshot.
	g := newFSM(t, Config{})
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, f)))); err != nil {
		t.Fatal(err)
	}
	if got := tableRows(t, g); got != want {
		t.Errorf("restored table = %s, want %s", got, want)
	}
}
