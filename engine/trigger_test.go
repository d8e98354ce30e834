package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

const startApp = `@app:name('Starter')
define stream S (v int);
define trigger Boot at 'start';
from Boot select triggered_time insert into Booted;`

func countStream(outs []Output, stream string) int {
	n := 0
	for _, o := range outs {
		if o.Stream == stream {
			n++
		}
	}
	return n
}

// TestTrigger_StartOncePerDeploy: 'start' fires at the first call after a deploy, not again
// after an identical redeploy or a restore; a changed app text is a new deploy.
func TestTrigger_StartOncePerDeploy(t *testing.T) {
	e := newEngine(t, "", startApp)
	outs := e.Tick(1, 5000)
	if countStream(outs, "Booted") != 1 || outs[0].Row[0].I != 5000 || outs[0].Time != 5000 {
		t.Fatalf("first tick: %+v, want one Booted at 5000", outs)
	}
	if _, err := e.Deploy(startApp); err != nil {
		t.Fatal(err)
	}
	if n := countStream(e.Tick(2, 6000), "Booted"); n != 0 {
		t.Errorf("identical redeploy fired start again (%d)", n)
	}
	snap := encode(t, e)
	restored, _ := New(Config{})
	if err := restored.UnmarshalBinary(snap); err != nil {
		t.Fatal(err)
	}
	if n := countStream(restored.Tick(3, 7000), "Booted"); n != 0 {
		t.Errorf("restored engine fired start again (%d)", n)
	}
	if _, err := e.Deploy(startApp + "\n"); err != nil {
		t.Fatal(err)
	}
	outs, err := e.Apply(4, 8000, "S", [][]expr.Value{{expr.Int(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if countStream(outs, "Booted") != 1 {
		t.Errorf("a changed app did not start again: %+v", outs)
	}
}

// TestTrigger_FiresOnOtherAppsBatches: a batch for one app fires the due triggers of every
// app, before the batch's own outputs.
func TestTrigger_FiresOnOtherAppsBatches(t *testing.T) {
	e := newEngineApps(t, []string{`@app:name('A')
define stream SA (v int);
from SA select v insert into OutA;`, `@app:name('B')
define trigger Half at every 500 millisec;
from Half select triggered_time insert into OutB;`})
	if outs := e.Tick(1, 0); len(outs) != 0 {
		t.Fatalf("start tick: %+v", outs)
	}
	outs, err := e.Apply(2, 1200, "SA", [][]expr.Value{{expr.Int(7)}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outs {
		got = append(got, fmt.Sprintf("%s@%d", o.Stream, o.Time))
	}
	if want := "[OutB@500 OutB@1000 OutA@1200]"; fmt.Sprint(got) != want {
		t.Errorf("outputs %v, want %s", got, want)
	}
}

func TestTrigger_DeployErrors(t *testing.T) {
	e, _ := New(Config{})
	for _, tt := range []struct{ app, want string }{
		{"@app:name('X')\ndefine trigger T at '* * * 1 * MON';", "siddhiql: 2:21: trigger T: cron expression"},
		{"@app:name('X')\ndefine trigger T at '61 * * * * ?';", "siddhiql: 2:21: trigger T: cron field seconds: 61 is outside 0-59"},
		{"@app:name('X')\ndefine trigger T at 'start';\nfrom T select nope insert into O;", "nope"},
	} {
		if _, err := e.Deploy(tt.app); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.app, err, tt.want)
		}
	}
	if err := e.CheckEvents("T", nil); err == nil {
		t.Error("a trigger's stream takes ingested events")
	}
}
