package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppliedEvents: the node's applied events are the sum of its groups' series, in
// whatever float form the exposition uses; other metrics, even with the same prefix, are not
// counted, and a text without the metric says so.
func TestAppliedEvents(t *testing.T) {
	text := `# HELP tally_fsm_applied_events_total Events applied by this replica's state machine.
# TYPE tally_fsm_applied_events_total counter
tally_fsm_applied_events_total{group="0"} 1.5e+06
tally_fsm_applied_events_total{group="4"} 250000
tally_fsm_applied_events_total_extra{group="4"} 7
tally_fsm_applied_events_totalx 9
tally_flush_rows_total{group="0"} 1000
`
	if v, ok := appliedEvents(text); !ok || v != 1.75e6 {
		t.Errorf("appliedEvents = %v, %v; want 1750000, true", v, ok)
	}
	if v, ok := appliedEvents("tally_fsm_applied_events_total 12\n"); !ok || v != 12 {
		t.Errorf("without labels: %v, %v; want 12, true", v, ok)
	}
	if _, ok := appliedEvents("tally_flush_rows_total{group=\"0\"} 1000\n"); ok {
		t.Error("a text without the metric was read as having it")
	}
}

// scaleFixture writes a scaling step's results: size nodes, acked events, per node the CPU
// ticks (at 100 Hz) during the run, 50 ticks in the 5 s idle (except n2: 100), and the events
// applied during the run (before: 1000 in each of two groups; -1: no /metrics after it).
func scaleFixture(t *testing.T, dir string, nodes int, acked int64, evs float64, ticks []int, applied []int64) {
	t.Helper()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	name := fmt.Sprintf("scale%d", nodes)
	write(name+".json", fmt.Sprintf(`{"clients":8,"events_per_request":1000,"duration_s":10,"events":%d,"events_per_s":%g,"errors":0,"latency_ms":{"p50":50,"p99":250}}`+"\n", acked, evs))
	cpu := fmt.Sprintf("clk_tck=100\nnodes=%d\npids=1 2 3\nidle_s=5\n", nodes)
	for i, tk := range ticks {
		idle := 50
		if i == 1 {
			idle = 100
		}
		cpu += fmt.Sprintf("idle_ticks_n%d=%d\nticks_n%d=%d\n", i+1, idle, i+1, tk)
	}
	write(name+".cpu", cpu)
	for i, a := range applied {
		prom := func(extra int64) string {
			return fmt.Sprintf("tally_fsm_applied_events_total{group=\"0\"} %d\ntally_fsm_applied_events_total{group=\"1\"} %d\n", 1000, 1000+extra)
		}
		write(fmt.Sprintf("%s_n%d_before.prom", name, i+1), prom(0))
		if a >= 0 {
			write(fmt.Sprintf("%s_n%d_after.prom", name, i+1), prom(a))
		}
	}
}

// TestScaleSection: per size the table has the acknowledged events/s, the applied events
// per node over those acknowledged against 3/N, a node's mean CPU per acknowledged event
// (ticks over events) with its lowest and highest node, the ratio to 3 nodes and the whole
// cluster's CPU per event, a node's CPU per second while idle and its CPU per event less what
// that idle rate spends over the run; the aim compares 9 nodes with 3; a missing file leaves
// n/a and is noted.
func TestScaleSection(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"scale.txt":   "sizes=3 6 9\nreplicas=3\nidle_s=5\nwarmup_s=3\n",
		"meta.txt":    "dur=10\n",
		"machine.txt": "nproc=2\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 3 nodes: 1,000,000 events; 900 – 1100 ticks (9 – 11 µs per event, mean 10).
	scaleFixture(t, dir, 3, 1000000, 100000, []int{1000, 1100, 900}, []int64{1000000, 1000000, 1000000})
	// 6 nodes: 6 µs per event per node (ratio 0.60); n6's /metrics after the run is missing.
	scaleFixture(t, dir, 6, 1000000, 100000, []int{600, 600, 600, 600, 600, 600}, []int64{500000, 500000, 500000, 500000, 500000, -1})
	// 9 nodes: 2,000,000 events; 4 µs per event per node (ratio 0.40).
	scaleFixture(t, dir, 9, 2000000, 200000, []int{800, 800, 800, 800, 700, 900, 800, 800, 800},
		[]int64{666000, 668000, 666000, 666000, 666000, 666000, 666000, 666000, 666000})

	r := &report{dir: dir}
	got := r.scaleSection()
	for _, want := range []string{
		// Idle: 100 ms/s, n2 200 ms/s, so over the 10 s run 1 s (n2 2 s) of CPU whatever
		// the load: 1 µs per event (n2 2 µs) with 1,000,000 events, half that with 2,000,000.
		"| 3 | 3 | 133.3 (100.0 – 200.0) | 100,000 | 250 | 1.00 (1.00; ideal 1.00) | 10.0 (9.0 – 11.0) | 1.00x | 8.7 (1.00x) | 30.0 |",
		"| 6 | 6 | 116.7 (100.0 – 200.0) | 100,000 | 250 | n/a (0.50; ideal 0.50) | 6.0 (6.0) | 0.60x | 4.8 (0.56x) | 36.0 |",
		"| 9 | 9 | 111.1 (100.0 – 200.0) | 200,000 | 250 | 0.33 (0.33 – 0.33; ideal 0.33) | 4.0 (3.5 – 4.5) | 0.40x | 3.4 (0.40x) | 36.0 |",
		"at most 0.45x that at 3 nodes: **met** (0.40x)",
		"ratio to 3 nodes",
		"for 10 s after 5 s idle and a 3 s\nwarm-up",
		"on the same 2 cores",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
	if len(r.problems) != 1 || !strings.Contains(r.problems[0], "scale6_n6_after.prom") {
		t.Errorf("problems %q, want the missing scale6_n6_after.prom", r.problems)
	}

	// Without the 9-node run the aim is not measured; a size with no run at all is n/a.
	if err := os.WriteFile(filepath.Join(dir, "scale.txt"), []byte("sizes=3 6 10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = &report{dir: dir}
	got = r.scaleSection()
	for _, want := range []string{
		"| 10 | 10 | n/a (n/a) | n/a | n/a | n/a (n/a; ideal 0.30) | n/a (n/a) | n/a | n/a (n/a) | n/a |",
		"not measured (needs the 3- and the 9-node run)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}

	empty := &report{dir: t.TempDir()}
	if s := empty.scaleSection(); s != "" || len(empty.problems) == 0 {
		t.Errorf("without scale.txt: section %q, problems %q", s, empty.problems)
	}
}

// TestAtMostRatio: the aim is met up to and including the limit.
func TestAtMostRatio(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0.40, "**met** (0.40x)"},
		{0.45, "**met** (0.45x)"},
		{0.52, "**missed**: 0.52x, 0.07 over"},
		{math.NaN(), "not measured"},
	} {
		if got := atMostRatio(c.v, 0.45); !strings.HasPrefix(got, c.want) {
			t.Errorf("atMostRatio(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}
