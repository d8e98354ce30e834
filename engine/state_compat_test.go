package engine

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateState = flag.Bool("update-state", false, "rewrite testdata/state-*.golden")

// compatRun is the golden state's workload: the mixed app (event-time and arrival-time
// aggregations with min, max, distinctCount and latest values; windows) fed with late and
// out-of-order events, closed rows dropped now and then as a flusher would.
func compatRun(t *testing.T) *Engine {
	t.Helper()
	e := newEngine(t, "Europe/Paris", mixedApp)
	for i, s := range workload(5, 200) {
		if s.tick {
			e.Tick(s.index, s.now)
		} else if _, err := e.Apply(s.index, s.now, "Trades", s.rows); err != nil {
			t.Fatalf("step %d: %v", s.index, err)
		}
		if i%37 == 36 {
			e.DropFlushed(s.index - 20)
		}
	}
	return e
}

// rowDump prints every in-memory row of every granularity and what a flush after index 150
// would write, in the engine's order.
func rowDump(e *Engine) string {
	var b strings.Builder
	a, _ := e.App("Mixed")
	for _, def := range a.Aggregations() {
		st, _ := a.Aggregation(def.Name)
		for _, d := range def.Durations {
			for _, r := range st.Rows(d) {
				fmt.Fprintf(&b, "%s %s %d %d %v %v %d %v %v %d\n", def.Name, d, r.AggTimestamp, r.EventTimestamp, r.Group, r.Latest, r.LastEventTimestamp, r.Bases, r.Sets, r.Index)
			}
		}
		changed := st.Changed(150)
		for _, d := range def.Durations {
			for _, r := range changed[d] {
				fmt.Fprintf(&b, "changed %s %s %d %d %s %d\n", def.Name, d, r.AggTimestamp, r.EventTimestamp, r.GroupKey(), r.Index)
			}
		}
	}
	return b.String()
}

// TestStateCompat: the engine state written by version 1 of the encoding (testdata) still
// decodes, re-encodes to the same bytes, and equals what this code builds from the same
// calls; the rows it hands out are the same too.
func TestStateCompat(t *testing.T) {
	e := compatRun(t)
	got := encode(t, e)
	dump := rowDump(e)
	statePath := filepath.Join("testdata", "state-v1.golden")
	rowsPath := filepath.Join("testdata", "state-v1-rows.golden")
	if *updateState {
		if err := os.WriteFile(statePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rowsPath, []byte(dump), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	wantRows, err := os.ReadFile(rowsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the workload encodes to %d bytes that differ from %s (%d bytes)", len(got), statePath, len(want))
	}
	if dump != string(wantRows) {
		t.Errorf("rows differ from %s:\n%s", rowsPath, dump)
	}
	restored, err := New(Config{AggTimeZone: "Europe/Paris"})
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.UnmarshalBinary(want); err != nil {
		t.Fatalf("decode %s: %v", statePath, err)
	}
	if !bytes.Equal(encode(t, restored), want) {
		t.Error("decoding the golden state and encoding it again changed the bytes")
	}
	if d := rowDump(restored); d != string(wantRows) {
		t.Errorf("rows of the restored golden state differ from %s:\n%s", rowsPath, d)
	}
}
