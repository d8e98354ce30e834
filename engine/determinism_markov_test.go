package engine

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// markovApp trains a matrix of each symbol's venue changes; ids expire after 2 s, the first
// 3 events only train, and events with qty <= 3 do not train.
const markovApp = `@app:name('Markov')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
from Trades[price > 10.0]#markov:markovChain(symbol, venue, 2 sec, 0.3, 3, qty > 3L)
select symbol, lastState, venue, transitionProbability, notify
insert into Transitions;
from Trades#markov:markovChain(venue, symbol, 1 sec, 0.5, 0)[notify]#window.length(3)
select venue, count() as n group by venue
insert into Notified;
`

// TestDeterminism_Markov: two engines fed the same calls give the same outputs and
// encodings, and restoring at several cuts and continuing equals never stopping.
func TestDeterminism_Markov(t *testing.T) {
	apps := []string{markovApp}
	steps := workload(23, 300)
	a, b := newEngineApps(t, apps), newEngineApps(t, apps)
	oa, ob := run(t, a, steps), run(t, b, steps)
	if len(oa) == 0 {
		t.Fatal("the workload produced no outputs: it tests nothing")
	}
	joined := strings.Join(oa, "\n")
	for _, want := range []string{`"notify":true`, `"notify":false`, `"lastState":null`, "Notified"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the workload's outputs never have %s", want)
		}
	}
	if fmt.Sprint(oa) != fmt.Sprint(ob) {
		t.Fatal("same calls gave different outputs")
	}
	want := encode(t, a)
	if !bytes.Equal(want, encode(t, b)) {
		t.Fatal("same calls gave different encodings")
	}
	checkRestoreAtCuts(t, func() *Engine { return newEngineApps(t, apps) }, steps, []int{1, 90, 181, 299}, oa, want)
}

func TestMarkov_DeployErrors(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	const head = "@app:name('M') define stream S (id string, st string, n int, lastState string);\n"
	for _, c := range []struct{ query, msg string }{
		{"from S#markov:markovChain(id, st, 60 min, 0.2) select * insert into O;", "3:8: #markov:markovChain: takes 5 or 6 arguments"},
		{"from S#markov:markovChain(n, st, 60 min, 0.2, 5) select * insert into O;", "the id must be a string, found int"},
		{"from S#markov:markovChain(id, st, n, 0.2, 5) select * insert into O;", "durationToKeep must be a constant"},
		{"from S#markov:markovChain(id, st, 60 min, 1, 5) select * insert into O;", "alertThreshold must be a double constant"},
		{"from S#markov:markovChain(id, st, 60 min, 0.2, 'matrix.csv') select * insert into O;", "a Markov matrix from a file is not supported"},
		{"from S#markov:markovChain(id, st, 60 min, 0.2, -1) select * insert into O;", "notificationsHoldLimit must be an int or long constant, at least 0"},
		{"from S#markov:markovChain(id, st, 60 min, 0.2, 5, n) select * insert into O;", "train must be a bool, found int"},
		{"from S#markov:markovChain(id, st, 60 min, 0.2, 5) select id, lastState insert into O;", "stream S already has an attribute lastState"},
		{"from S#window.length(2)#markov:markovChain(id, st, 60 min, 0.2, 5) select * insert into O;", "put the stream function before the window"},
		{"from S#markov:markovChain(id, st, 1 min, 0.2, 5)#markov:markovChain(id, st, 1 min, 0.2, 5) select * insert into O;", "at most one stream function"},
		{"from S#str:tokenize(id, ',') select * insert into O;", "stream function #str:tokenize is not supported"},
		{"from S#markov:markovChain(id, st, 1 min, 0.2, 5) join T#window.length(1) on S.id == T.id select S.id insert into O;", "on a join input is not supported"},
	} {
		text := strings.Replace(head, ", lastState string", map[bool]string{true: ", lastState string", false: ""}[strings.Contains(c.msg, "lastState")], 1) +
			"define stream T (id string);\n" + c.query
		_, err := e.Deploy(text)
		var perr *siddhiql.Error
		if err == nil || !errors.As(err, &perr) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s\n err = %v, want %q", c.query, err, c.msg)
		}
	}
	if len(e.Apps()) != 0 {
		t.Error("a refused deploy left an app")
	}
}

func TestMarkov_BoundedMemory(t *testing.T) {
	e := newEngineApps(t, []string{`@app:name('MB')
define stream S (id string, st string);
from S#markov:markovChain(id, st, 1 sec, 0.5, 0) select id, lastState, transitionProbability insert into O;`})
	a, _ := e.App("MB")
	m := a.queries[0].fn
	m.maxIDs, m.maxTransitions = 3, 2
	send := func(now int64, id, st string) string {
		t.Helper()
		outs, err := e.Apply(uint64(now), now, "S", []expr.Row{{expr.String(id), expr.String(st)}})
		if err != nil || len(outs) != 1 {
			t.Fatalf("apply: %v %v", outs, err)
		}
		return string(expr.AppendJSONObject(nil, outs[0].Attrs, outs[0].Row))
	}
	send(1, "a", "x")
	send(2, "a", "y") // a: x→y counted
	send(3, "b", "x")
	send(4, "b", "z") // b: x→z counted: 2 transitions, the bound
	send(5, "c", "x")
	if got := send(6, "c", "w"); got != `{"id":"c","lastState":"x","transitionProbability":0.0}` {
		t.Errorf("a third transition: %s", got) // not counted: x→w stays unknown
	}
	if m.trans[[2]string{"x", "w"}] != 0 || m.starts["x"] != 2 {
		t.Errorf("transitions %v, starts %v: the third was counted", m.trans, m.starts)
	}
	// A fourth id: past maxIDs, a (first seen, still known) is forgotten.
	send(7, "d", "x")
	if len(m.order) != 3 || m.order[0] != "b" {
		t.Errorf("ids %v, want b, c, d", m.order)
	}
	if got := send(8, "a", "y"); got != `{"id":"a","lastState":null,"transitionProbability":0.0}` {
		t.Errorf("a after it was dropped: %s", got)
	}
	// Once ids expire (1 s), shrinking drops the forgotten ones and keeps the live.
	send(1500, "f", "x") // c, d and a are forgotten now (expired at 1006..1008)
	send(1600, "e", "x")
	if len(m.order) != 2 || !slices.Equal(m.order, []string{"f", "e"}) {
		t.Errorf("ids %v after expiry, want f, e", m.order)
	}
}
