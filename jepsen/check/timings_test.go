package check

import (
	"maps"
	"testing"
)

func TestTimingsStats(t *testing.T) {
	h := &History{
		Ops: []Op{
			ingest(0, 0, "k1", "p1", 1, OK, 0, 10, nil),        // 10ms
			ingest(1, 0, "k1", "p1", 9, OK, 100, 120, nil),     // 20ms; group 0
			ingest(2, 0, "k1", "p1", 2, OK, 130, 150, nil),     // 20ms; group 0 after the group 1 fault
			ingest(3, 1, "k2", "p2", 2, OK, 200, 300, nil),     // 100ms: group 1's first ack after 100ms
			ingest(4, 1, "k2", "p2", 3, OK, 210, 350, nil),     // 140ms
			ingest(5, 1, "k2", "p2", 4, Unknown, 90, 400, nil), // not acknowledged
			ingest(6, 0, "k1", "p1", 3, OK, 1050, 1100, nil),   // 50ms: first ack after 1000ms
			read(7, "k1", OK, 0, 5, 0),
			read(8, "k1", OK, 10, 25, 0),
			read(9, "k1", Fail, 10, 95, 0),
		},
		Faults: []Fault{
			{Kind: "kill-leader", Group: 1, Start: msec(100), Leader: true},
			{Kind: "partition", Group: -1, Start: msec(500)},
			{Kind: "pause-leader", Group: -1, Start: msec(1000), Leader: true},
		},
	}
	v := Timings(h)
	expect(t, v, true)
	want := map[string]string{
		"failovers":               "2",
		"failover p50":            "100.0ms",
		"failover p99":            "200.0ms",
		"failover max":            "200.0ms",
		"ingest ack latency p50":  "20.0ms",
		"ingest ack latency p99":  "140.0ms",
		"ingest ack latency p999": "140.0ms",
		"read latency p50":        "5.0ms",
		"read latency p99":        "15.0ms",
	}
	if !maps.Equal(v.Stats, want) {
		t.Errorf("stats\n got %v\nwant %v", v.Stats, want)
	}
}

func TestTimings(t *testing.T) {
	acked := ingest(0, 1, "k2", "p2", 1, OK, 6, 10, nil)
	for _, c := range []struct {
		name string
		h    *History
		ok   bool
		want []string
	}{
		{name: "clean", h: cleanHistory(), ok: true},
		{
			name: "leader fault never recovered",
			h: &History{Ops: []Op{acked}, Faults: []Fault{
				{Kind: "kill-leader", Group: 1, Start: msec(12300), Leader: true},
				{Kind: "kill-leader", Group: 1, Start: msec(5), Leader: true},
			}},
			want: []string{"group 1 acknowledged no write after kill-leader at 12.3s"},
		},
		{
			name: "other groups' writes do not count",
			h: &History{Ops: []Op{acked, ingest(1, 0, "k1", "p1", 1, OK, 0, 50, nil)}, Faults: []Fault{
				{Kind: "pause-leader", Group: 1, Start: msec(20), Leader: true},
			}},
			want: []string{"group 1 acknowledged no write after pause-leader at 20ms"},
		},
		{
			name: "a write in flight when the fault began is no failover",
			h: &History{Ops: []Op{ingest(0, 1, "k2", "p2", 1, OK, 0, 10, nil)}, Faults: []Fault{
				{Kind: "kill-leader", Group: 1, Start: msec(5), Leader: true},
			}},
			want: []string{"group 1 acknowledged no write after kill-leader at 5ms"},
		},
		{
			name: "no group recovered",
			h: &History{Ops: []Op{acked}, Faults: []Fault{
				{Kind: "isolate-leader", Group: -1, Start: msec(20), Leader: true},
			}},
			want: []string{"no group acknowledged a write after isolate-leader at 20ms"},
		},
		{
			name: "no write ever acknowledged",
			h: &History{Ops: []Op{ingest(0, 1, "k2", "p2", 1, Unknown, 0, 10, nil)}, Faults: []Fault{
				{Kind: "kill-leader", Group: 1, Start: msec(5), Leader: true},
			}},
			ok: true,
		},
		{
			name: "faults that keep the leader are not failovers",
			h: &History{Ops: []Op{acked}, Faults: []Fault{
				{Kind: "partition", Group: 1, Start: msec(20)},
			}},
			ok: true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			expect(t, Timings(c.h), c.ok, c.want...)
		})
	}
}
