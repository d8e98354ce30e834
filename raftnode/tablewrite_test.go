package raftnode

import (
	"context"
	"strings"
	"testing"

	"github.com/tally-db/tally/fsm"
)

func TestTableWrite(t *testing.T) {
	c := newCluster(t, 1)
	n := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	app := `@app:name('W')
define stream WS (k string, v long);
define table WT (k string, v long);
`
	if _, _, err := n.Deploy(ctx, app); err != nil {
		t.Fatal(err)
	}
	before := n.FSM().AppliedIndex()
	if _, err := n.TableWrite(ctx, "W", "delete Nope on 1 == 1"); err == nil || !strings.Contains(err.Error(), "no table Nope") {
		t.Fatalf("bad write: err %v", err)
	}
	if got := n.FSM().AppliedIndex(); got != before {
		t.Fatalf("a refused write moved the applied index %d → %d", before, got)
	}
	idx, err := n.TableWrite(ctx, "W", "select 'a' as k, 1L as v insert into WT")
	if err != nil || idx <= before {
		t.Fatalf("write: index %d, err %v", idx, err)
	}
	var rows string
	if err := n.Read(ctx, Stale, idx, func(e fsm.View) {
		res, err := e.TableQuery("W", "from WT")
		if err == nil {
			rows = string(res.AppendJSON(nil, false))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if rows != `{"records":[["a",1]]}` {
		t.Errorf("table = %s", rows)
	}
}
