package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

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
	for _, cut := range []int{1, 90, 181, 299} {
		first := newEngineApps(t, apps)
		out := run(t, first, steps[:cut])
		snap := encode(t, first)
		second, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := second.UnmarshalBinary(snap); err != nil {
			t.Fatalf("cut %d: restore: %v", cut, err)
		}
		if !bytes.Equal(encode(t, second), snap) {
			t.Fatalf("cut %d: restore then encode changed the bytes", cut)
		}
		out = append(out, run(t, second, steps[cut:])...)
		if fmt.Sprint(out) != fmt.Sprint(oa) {
			t.Errorf("cut %d: outputs after restore differ from an uninterrupted run", cut)
		}
		if !bytes.Equal(encode(t, second), want) {
			t.Errorf("cut %d: final state after restore differs from an uninterrupted run", cut)
		}
	}
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
