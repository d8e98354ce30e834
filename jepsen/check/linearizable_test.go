package check

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// counterHistory is a history of ops on key k1 only.
func counterHistory(ops ...Op) *History {
	for i := range ops {
		ops[i].ID = i
	}
	return &History{Ops: ops}
}

func add(invoke, complete int, st Status, n int) Op {
	var tsv []int64
	for range n {
		tsv = append(tsv, t0, 1)
	}
	return ingest(0, 0, "k1", "", 0, st, invoke, complete, evs("k1", "", 0, tsv...))
}

func TestLinearizable(t *testing.T) {
	for _, c := range []struct {
		name string
		h    *History
		ok   bool
		want []string
	}{
		{name: "clean history", h: cleanHistory(), ok: true},
		{name: "read after add", h: counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 20, 30, 2)), ok: true},
		{
			name: "stale read",
			h:    counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 20, 30, 0)),
			want: []string{"key k1: read (op 1, 20ms to 30ms) returned 0, but 2 events had been acknowledged before it began (stale read)"},
		},
		{
			name: "read of more than was posted",
			h:    counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 20, 30, 5)),
			want: []string{"key k1: read (op 1, 20ms to 30ms) returned 5, but only 2 events had been posted by the time it ended"},
		},
		{name: "concurrent read sees the old count", h: counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 5, 15, 0)), ok: true},
		{name: "concurrent read sees the new count", h: counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 5, 15, 2)), ok: true},
		{
			name: "concurrent read sees half an ingest",
			h:    counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 5, 15, 1)),
			want: []string{"key k1: no linearization of its 2 operations exists; none gets past op 1: read k1 -> 1"},
		},
		{name: "unknown ingest not applied", h: counterHistory(add(0, 10, Unknown, 2), read(0, "k1", OK, 20, 30, 0)), ok: true},
		{name: "unknown ingest applied", h: counterHistory(add(0, 10, Unknown, 2), read(0, "k1", OK, 20, 30, 2)), ok: true},
		{
			name: "unknown ingest applied after the client gave up",
			h: counterHistory(add(0, 10, Unknown, 2), read(0, "k1", OK, 20, 30, 0),
				add(35, 40, OK, 1), read(0, "k1", OK, 50, 60, 1), read(0, "k1", OK, 70, 80, 3)),
			ok: true,
		},
		{
			name: "unknown ingest seen, then unseen",
			h:    counterHistory(add(0, 10, Unknown, 2), read(0, "k1", OK, 20, 30, 2), read(0, "k1", OK, 40, 50, 0)),
			want: []string{"key k1: read (op 2, 40ms to 50ms) returned 0, but read op 1, which completed at 30ms before it began, had returned 2 (count went back)"},
		},
		{
			name: "unknown ingest partly applied",
			h:    counterHistory(add(0, 10, Unknown, 2), read(0, "k1", OK, 20, 30, 1)),
			want: []string{"key k1: no linearization of its 2 operations exists; none gets past op 1: read k1 -> 1, invoked at 20ms"},
		},
		{
			name: "unknown ingests applied in any combination",
			h: counterHistory(add(0, 10, Unknown, 2), add(0, 10, Unknown, 3), add(0, 10, Unknown, 2),
				read(0, "k1", OK, 20, 30, 3), read(0, "k1", OK, 40, 50, 5), read(0, "k1", OK, 60, 70, 7)),
			ok: true,
		},
		{
			name: "unknown ingests cannot make the count",
			h: counterHistory(add(0, 10, Unknown, 2), add(0, 10, Unknown, 3), add(0, 10, Unknown, 2),
				read(0, "k1", OK, 20, 30, 3), read(0, "k1", OK, 40, 50, 6)),
			want: []string{"key k1: no linearization of its 5 operations exists; none gets past op 4: read k1 -> 6, invoked at 40ms"},
		},
		{
			name: "unknown ingest cannot apply before it began",
			h:    counterHistory(read(0, "k1", OK, 0, 10, 2), add(20, 30, Unknown, 2)),
			want: []string{"key k1: read (op 0, 0s to 10ms) returned 2, but only 0 events had been posted by the time it ended"},
		},
		{name: "failed ingest not applied", h: counterHistory(add(0, 10, Fail, 2), read(0, "k1", OK, 20, 30, 0)), ok: true},
		{
			name: "failed ingest applied",
			h:    counterHistory(add(0, 10, Fail, 2), read(0, "k1", OK, 20, 30, 2)),
			want: []string{"key k1: read (op 1, 20ms to 30ms) returned 2, but only 0 events had been posted"},
		},
		{name: "unanswered read ignored", h: counterHistory(add(0, 10, OK, 2), read(0, "k1", Unknown, 20, 30, 0)), ok: true},
		{
			name: "reads go back",
			h:    counterHistory(add(0, 100, OK, 2), read(0, "k1", OK, 10, 20, 2), read(0, "k1", OK, 30, 40, 0)),
			want: []string{"key k1: read (op 2, 30ms to 40ms) returned 0, but read op 1, which completed at 20ms before it began, had returned 2 (count went back)"},
		},
		{
			name: "retry after an unknown outcome adds once",
			h: retried(counterHistory(add(0, 10, Unknown, 2), read(0, "k1", OK, 20, 30, 2),
				add(50, 60, OK, 2), read(0, "k1", OK, 70, 80, 2))),
			ok: true,
		},
		{
			name: "retry after an unknown outcome added twice",
			h: retried(counterHistory(add(0, 10, Unknown, 2), read(0, "k1", OK, 20, 30, 2),
				add(50, 60, OK, 2), read(0, "k1", OK, 70, 80, 4))),
			want: []string{"key k1: read (op 3, 70ms to 80ms) returned 4, but only 2 events had been posted"},
		},
		{
			name: "other keys do not interfere",
			h: counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 20, 30, 2),
				read(0, "k2", OK, 20, 30, 0), read(0, "k3", OK, 20, 30, 1)),
			want: []string{"key k3: read (op 3, 20ms to 30ms) returned 1"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Linearizable(c.h, "", 10*time.Second)
			expect(t, v, c.ok, c.want...)
			if !c.ok && v.Stats["result"] != string(porcupine.Illegal) {
				t.Errorf("result %q, want Illegal", v.Stats["result"])
			}
		})
	}
}

// retried gives every ingest of h one (producer, seq), as a client retrying it would.
func retried(h *History) *History {
	for i := range h.Ops {
		if h.Ops[i].Kind == Ingest {
			h.Ops[i].Producer, h.Ops[i].Seq = "p1", 1
			for j := range h.Ops[i].Events {
				h.Ops[i].Events[j].Producer, h.Ops[i].Events[j].Seq = "p1", 1
			}
		}
	}
	return h
}

func TestLinearizableWritesVisualization(t *testing.T) {
	for _, c := range []struct {
		name string
		h    *History
		ok   bool
	}{
		{"pass", counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 20, 30, 2)), true},
		{"fail", counterHistory(add(0, 10, OK, 2), read(0, "k1", OK, 20, 30, 0)), false},
		{"empty", &History{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lin.html")
			v := Linearizable(c.h, path, 10*time.Second)
			if v.OK != c.ok {
				t.Fatalf("OK = %v, want %v: %q", v.OK, c.ok, v.Problems)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("visualization not written: %v (stats %v)", err, v.Stats)
			}
			if !strings.Contains(string(data), "<html") {
				t.Errorf("visualization is not HTML: %.100s", data)
			}
		})
	}
	v := Linearizable(&History{}, filepath.Join(t.TempDir(), "missing", "lin.html"), time.Second)
	expect(t, v, true)
	if !strings.HasPrefix(v.Stats["visualization"], "not written") {
		t.Errorf("visualization stat %q, want a write error", v.Stats["visualization"])
	}
}

// TestLinearizableUndecidedFails: running out of time is a failure, never a pass.
func TestLinearizableUndecidedFails(t *testing.T) {
	h := simulate(3, 2, 20, 400, 0.1)
	v := Linearizable(h, "", time.Millisecond)
	expect(t, v, false, "the checker could not decide within 1ms: not a pass")
	if v.Stats["result"] != string(porcupine.Unknown) {
		t.Errorf("result %q, want Unknown", v.Stats["result"])
	}
}

// TestLinearizableScale: thousands of ops over 20 keys, a tenth of the ingests with an
// unknown outcome, decide in well under the budget All gives the checker; a single
// stale read among them is found.
func TestLinearizableScale(t *testing.T) {
	h := simulate(11, 20, 20, 250, 0.1)
	start := time.Now()
	v := Linearizable(h, "", time.Minute)
	took := time.Since(start)
	expect(t, v, true)
	if v.Stats["ops checked"] != "5000" || v.Stats["keys"] != "20" {
		t.Errorf("stats %v", v.Stats)
	}
	if took > 10*time.Second {
		t.Errorf("5000 ops took %v", took)
	}
	t.Logf("5000 ops over 20 keys: %v", took)

	i := slices.IndexFunc(h.Ops, func(op Op) bool { return op.Kind == Read && op.Value > 10 && op.Invoke > msec(2000) })
	h.Ops[i].Value -= 10
	v = Linearizable(h, "", time.Minute)
	expect(t, v, false, "key "+h.Ops[i].Key+": read (op "+itoa(h.Ops[i].ID)+",")
}

// TestSimulatedHistoriesPass: correct histories, with unknown ingests that applied in
// time, late or never, pass every seed.
func TestSimulatedHistoriesPass(t *testing.T) {
	for seed := range uint64(20) {
		h := simulate(seed, 3, 6, 60, 0.2)
		expect(t, Linearizable(h, "", 10*time.Second), true)
		expect(t, ExactlyOnce(h), true)
	}
}

// plainModel is the textbook model counterModel replaces: an unknown ingest is an add
// that never returns.
var plainModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		count := state.(int64)
		in := input.(counterInput)
		if !in.read {
			return true, count + in.n
		}
		return output.(int64) == count, count
	},
}

// TestCounterModelMatchesPlainModel: on small random histories, some of them corrupted,
// the pending-set model decides exactly as the plain model does.
func TestCounterModelMatchesPlainModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	illegal := 0
	for seed := range uint64(400) {
		h := simulate(seed, 1, 3, 5, 0.4)
		if rng.IntN(2) == 0 {
			reads := slices.DeleteFunc(slices.Clone(h.Ops), func(op Op) bool { return op.Kind != Read })
			if len(reads) > 0 {
				r := reads[rng.IntN(len(reads))]
				h.Ops[r.ID].Value += int64(rng.IntN(5)) - 2
			}
		}
		var plain []porcupine.Operation
		for _, op := range counterOps(h) {
			if in := op.Input.(counterInput); !in.read && !in.known {
				op.Return = noReturn
			}
			plain = append(plain, op)
		}
		want := porcupine.CheckOperations(plainModel, plain)
		got := Linearizable(h, "", 10*time.Second)
		if got.OK != want {
			t.Fatalf("seed %d: counter model says %v, plain model %v; problems %q; ops %+v", seed, got.OK, want, got.Problems, h.Ops)
		}
		if !want {
			illegal++
		}
	}
	if illegal < 50 {
		t.Errorf("only %d of 400 histories were illegal: the comparison proves little", illegal)
	}
}

func TestAbsorb(t *testing.T) {
	got := absorb(possibility{count: 3, pending: []int64{1, 1, 2, 5}}, 5)
	want := []possibility{{5, []int64{1, 1, 5}}, {5, []int64{2, 5}}}
	if !slices.EqualFunc(normal(got), want, func(a, b possibility) bool { return comparePossibilities(a, b) == 0 }) {
		t.Errorf("absorb = %v, want %v", got, want)
	}
	if got := absorb(possibility{count: 3, pending: []int64{2}}, 2); got != nil {
		t.Errorf("absorb below the count = %v, want none", got)
	}
	if got := absorb(possibility{count: 3, pending: []int64{2, 2}}, 6); got != nil {
		t.Errorf("absorb of an unreachable count = %v, want none", got)
	}
}

func BenchmarkLinearizable20k(b *testing.B) {
	h := simulate(7, 20, 20, 1000, 0.05)
	for b.Loop() {
		if v := Linearizable(h, "", time.Minute); !v.OK {
			b.Fatal(v.Problems)
		}
	}
}

func TestLinearizableListsFewReadsPerKey(t *testing.T) {
	ops := []Op{add(0, 10, OK, 2)}
	for i := range 8 {
		ops = append(ops, read(0, "k1", OK, 20+10*i, 25+10*i, 0))
	}
	ops = append(ops, read(0, "k2", OK, 20, 30, 3))
	v := Linearizable(counterHistory(ops...), "", 10*time.Second)
	want := []string{"key k1: read (op 1,", "key k1: read (op 2,", "key k1: read (op 3,", "key k1: read (op 4,",
		"key k1: read (op 5,", "key k1: ... and 3 more reads like these", "key k2: read (op 9, 20ms to 30ms) returned 3"}
	expect(t, v, false, want...)
}
