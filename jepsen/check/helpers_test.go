package check

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the event time (ms) of the clean history's first bucket.
const t0 = 1_700_000_003_000

// msec is n milliseconds since the run started.
func msec(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// evs makes the events of one ingest: one per (ts, v) pair, numbered from 0.
func evs(key, producer string, seq int64, tsv ...int64) []Event {
	var out []Event
	for i := 0; i+1 < len(tsv); i += 2 {
		out = append(out, Event{Key: key, Producer: producer, Seq: seq, I: int64(i / 2), TS: tsv[i], V: tsv[i+1]})
	}
	return out
}

// ingest is an ingest op; times in ms.
func ingest(id, group int, key, producer string, seq int64, st Status, invoke, complete int, events []Event) Op {
	return Op{ID: id, Process: id, Kind: Ingest, Group: group, Key: key, Producer: producer, Seq: seq,
		Events: events, Status: st, Invoke: msec(invoke), Complete: msec(complete), Attempts: 1}
}

// read is a read op; times in ms.
func read(id int, key string, st Status, invoke, complete int, value int64) Op {
	return Op{ID: id, Process: id, Kind: Read, Key: key, Value: value, Status: st,
		Invoke: msec(invoke), Complete: msec(complete), Attempts: 1}
}

// alert is a sink delivery of the alert stream carrying e.
func alert(id string, e Event) Output {
	body := fmt.Sprintf(`{"id":%q,"data":{"key":%q,"producer":%q,"seq":%d,"i":%d,"ts":%d,"v":%d}}`,
		id, e.Key, e.Producer, e.Seq, e.I, e.TS, e.V)
	return Output{ID: id, Stream: "AlertStream", Body: body, Data: e}
}

// sub is a subscriber delivery of the windowed stream.
func sub(id string, conn int) Output {
	return Output{ID: id, Stream: "Windowed", Body: "w " + id, Conn: conn}
}

// cleanHistory is a small history every checker passes: two keys in two groups, an
// acknowledged, an unknown (never applied) and a failed ingest, reads, alerts delivered
// once and twice, two subscribers and a leader fault.
func cleanHistory() *History {
	e0 := evs("k1", "p1", 1, t0, 9, t0+500, 1)
	e2 := evs("k2", "p2", 1, t0+1000, 7)
	return &History{
		Seed: 1,
		Ops: []Op{
			ingest(0, 0, "k1", "p1", 1, OK, 0, 10, e0),
			read(1, "k1", OK, 20, 30, 2),
			ingest(2, 1, "k2", "p2", 1, OK, 5, 15, e2),
			ingest(3, 1, "k2", "p2", 2, Unknown, 40, 90, evs("k2", "p2", 2, t0+1100, 2)),
			ingest(4, 0, "k1", "p1", 2, Fail, 50, 55, evs("k1", "p1", 2, t0+2000, 9)),
			read(5, "k2", OK, 100, 110, 1),
			read(6, "k2", Unknown, 120, 130, 0),
		},
		Faults: []Fault{
			{Kind: "kill-leader", Nodes: []string{"n2"}, Group: 1, Start: msec(2), End: msec(60), Leader: true},
			{Kind: "partition", Nodes: []string{"n3"}, Group: -1, Start: msec(70), End: msec(80)},
		},
		AlertStream: "AlertStream",
		AlertMin:    5,
		Alerts:      []Output{alert("0-5-0", e0[0]), alert("1-3-0", e2[0]), alert("0-5-0", e0[0])},
		Subscribed: [][]Output{
			{sub("0-7-0", 0), sub("0-7-1", 0), sub("0-7-1", 1), sub("0-9-0", 1), sub("1-4-0", 1)},
			{sub("0-9-0", 0), sub("1-4-0", 0)},
		},
		Retained: []Output{sub("0-7-0", 0), sub("0-7-1", 0), sub("0-9-0", 0), sub("1-4-0", 0)},
		Replicas: []ReplicaSample{
			{Node: "n1", Group: 0, Index: 5, Hash: "h5"},
			{Node: "n2", Group: 0, Index: 5, Hash: "h5"},
			{Node: "n3", Group: 0, Index: 5, Hash: "h5"},
			{Node: "n1", Group: 1, Index: 3, Hash: "g3"},
			{Node: "n2", Group: 1, Index: 3, Hash: "g3"},
			{Node: "n3", Group: 1, Index: 2, Hash: "g2"},
		},
		Stored: []StoreSample{
			{Key: "k1", Count: 1, At: msec(1000)},
			{Key: "k1", Count: 2, At: msec(2000)},
			{Key: "k2", Count: 0, At: msec(1000)},
			{Key: "k2", Count: 1, At: msec(2000)},
		},
		FinalLive:   Counts{"k1": {t0: 2}, "k2": {t0 + 1000: 1}},
		FinalStored: Counts{"k1": {t0: 2}, "k2": {t0 + 1000: 1}},
	}
}

// expect asserts a verdict's outcome and, for a failure, that it lists exactly one problem
// per want, each of want appearing in some problem.
func expect(t *testing.T, v Verdict, ok bool, want ...string) {
	t.Helper()
	if v.Name == "" || v.Promise == "" {
		t.Errorf("verdict without name or promise: %+v", v)
	}
	if v.OK != ok {
		t.Fatalf("%s: OK = %v, want %v; problems:\n  %s", v.Name, v.OK, ok, strings.Join(v.Problems, "\n  "))
	}
	if ok && len(v.Problems) > 0 {
		t.Errorf("%s passed with problems: %q", v.Name, v.Problems)
	}
	if !ok && len(v.Problems) == 0 {
		t.Errorf("%s failed without naming a problem", v.Name)
	}
	if !ok && len(v.Problems) != len(want) {
		t.Errorf("%s: %d problems, want %d:\n  %s", v.Name, len(v.Problems), len(want), strings.Join(v.Problems, "\n  "))
	}
	for _, w := range want {
		if !slices.ContainsFunc(v.Problems, func(p string) bool { return strings.Contains(p, w) }) {
			t.Errorf("%s: no problem mentions %q; problems:\n  %s", v.Name, w, strings.Join(v.Problems, "\n  "))
		}
	}
}
