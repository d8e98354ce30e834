package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/expr"
)

// testApp has an arrival-time aggregation (checked through store queries) and a window
// query (so entries have outputs).
const testApp = `@app:name('T')
define stream S (k string, v long);
define aggregation A from S select k, sum(v) as total group by k aggregate every sec ... year;
from S#window.length(3) select k, sum(v) as s group by k insert into Out;
`

// otherApp is a second app, to deploy and undeploy.
const otherApp = `@app:name('U')
define stream U1 (name string, n int);
define aggregation UA from U1 select name, count() as c group by name aggregate every sec, min;
`

const t0 = int64(1514782800000) // 2018-01-01T05:00:00Z

func ev(k string, v int64) expr.Row { return expr.Row{expr.String(k), expr.Long(v)} }

func batch(now int64, parts ...Part) Command {
	return Command{Kind: KindBatch, Time: now, Parts: parts}
}

func part(stream, producer string, seq uint64, events ...expr.Row) Part {
	return Part{Stream: stream, ProducerID: producer, Seq: seq, Events: events}
}

func newFSM(t testing.TB, cfg Config) *FSM {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// logOf turns commands into raft command entries with indexes from first.
func logOf(t testing.TB, first uint64, cmds ...Command) []*raft.Log {
	t.Helper()
	logs := make([]*raft.Log, len(cmds))
	for i := range cmds {
		b, err := cmds[i].MarshalBinary()
		if err != nil {
			t.Fatalf("encode command %d: %v", i, err)
		}
		logs[i] = &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: b}
	}
	return logs
}

// apply feeds logs one by one and renders the results.
func apply(t testing.TB, f *FSM, logs []*raft.Log) []string {
	t.Helper()
	out := make([]string, 0, len(logs))
	for _, l := range logs {
		out = append(out, render(f.Apply(l)))
	}
	return out
}

func mustApply(t testing.TB, f *FSM, index uint64, c Command) *ApplyResult {
	t.Helper()
	res, ok := f.Apply(logOf(t, index, c)[0]).(*ApplyResult)
	if !ok {
		t.Fatalf("apply %d: no *ApplyResult", index)
	}
	return res
}

// render prints an Apply response completely, errors by message.
func render(v any) string {
	if v == nil {
		return "<nil>"
	}
	r := v.(*ApplyResult)
	var b strings.Builder
	fmt.Fprintf(&b, "#%d", r.Index)
	for i, p := range r.Parts {
		fmt.Fprintf(&b, " part%d{dup=%v events=%d err=%v}", i, p.Duplicate, p.Events, p.Err)
	}
	for _, o := range r.Outputs {
		fmt.Fprintf(&b, " out{%s/%s seq=%d exp=%v t=%d %s}", o.App, o.Stream, o.Seq, o.Expired, o.Time, expr.AppendJSONObject(nil, o.Attrs, o.Row))
	}
	if r.Err != nil {
		fmt.Fprintf(&b, " err=%v", r.Err)
	}
	return b.String()
}

func state(t testing.TB, f *FSM) []byte {
	t.Helper()
	b, err := f.State()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// query answers a store query on aggregation A of app T as JSON.
func query(t testing.TB, f *FSM, q string) string {
	t.Helper()
	var out string
	f.Read(func(e View) {
		res, err := e.Query("T", q)
		if err != nil {
			t.Fatalf("query %q: %v", q, err)
		}
		out = string(res.AppendJSON(nil, false))
	})
	return out
}

// totals is the year total per key of aggregation A.
func totals(t testing.TB, f *FSM) string {
	t.Helper()
	return query(t, f, `from A within 0L, 99999999999999L per "years" select k, total order by k`)
}

// memSink is an in-memory raft.SnapshotSink; failAt > 0 makes the failAt-th Write fail.
type memSink struct {
	bytes.Buffer
	writes            int
	failAt            int
	closed, cancelled bool
}

func (s *memSink) Write(p []byte) (int, error) {
	s.writes++
	if s.failAt > 0 && s.writes == s.failAt {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

// snapshotBytes takes a snapshot of f and persists it into memory.
func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v after a good persist", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

type readCloser struct {
	*bytes.Reader
	closed bool
}

func (r *readCloser) Close() error { r.closed = true; return nil }

func restore(t testing.TB, f *FSM, snap []byte) error {
	t.Helper()
	rc := &readCloser{Reader: bytes.NewReader(snap)}
	err := f.Restore(rc)
	if !rc.closed {
		t.Error("Restore did not close its reader")
	}
	return err
}
