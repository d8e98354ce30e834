package check

import (
	"fmt"
	"strings"
	"testing"
)

func TestBucketOf(t *testing.T) {
	for _, c := range []struct{ ts, want int64 }{
		{0, 0}, {999, 0}, {1000, 1000}, {t0 + 999, t0}, {-1, -1000}, {-1000, -1000}, {-1001, -2000},
	} {
		if got := bucketOf(c.ts); got != c.want {
			t.Errorf("bucketOf(%d) = %d, want %d", c.ts, got, c.want)
		}
	}
}

func TestExactlyOnce(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(h *History)
		ok     bool
		want   []string
	}{
		{name: "clean", change: func(*History) {}, ok: true},
		{name: "unknown ingest applied", change: func(h *History) { h.FinalLive["k2"][t0+1000] = 2 }, ok: true},
		{
			name:   "acknowledged event lost",
			change: func(h *History) { h.FinalLive["k1"][t0] = 1 },
			want:   []string{"key k1 bucket 1700000003000: counted 1, but 2 events were acknowledged (1 acknowledged event(s) lost)"},
		},
		{
			name:   "whole bucket lost",
			change: func(h *History) { delete(h.FinalLive, "k2") },
			want:   []string{"key k2 bucket 1700000004000: counted 0, but 1 events were acknowledged"},
		},
		{
			name:   "counted twice",
			change: func(h *History) { h.FinalLive["k2"][t0+1000] = 3 },
			want:   []string{"key k2 bucket 1700000004000: counted 3 > 1 acknowledged + 1 unknown (1 too many: counted twice)"},
		},
		{
			name:   "phantom bucket",
			change: func(h *History) { h.FinalLive["k9"] = map[int64]int64{t0 + 7000: 4} },
			want:   []string{"key k9 bucket 1700000010000: counted 4, but no event was written to it (phantom count)"},
		},
		{
			name:   "failed ingest counted",
			change: func(h *History) { h.FinalLive["k1"][t0+2000] = 1 },
			want:   []string{"key k1 bucket 1700000005000: counted 1, but no event was written to it"},
		},
		{
			name:   "no final counts",
			change: func(h *History) { h.FinalLive = nil },
			want:   []string{"no final live counts were recorded, though 3 events were acknowledged"},
		},
		{
			name: "retry after an unknown outcome counts once",
			change: func(h *History) {
				// op 3 retried after the run and acknowledged: still one write
				h.Ops = append(h.Ops, ingest(7, 1, "k2", "p2", 2, OK, 200, 210, h.Ops[3].Events))
				h.FinalLive["k2"][t0+1000] = 2
			},
			ok: true,
		},
		{
			name: "retry counted twice",
			change: func(h *History) {
				h.Ops = append(h.Ops, ingest(7, 1, "k2", "p2", 2, OK, 200, 210, h.Ops[3].Events))
				h.FinalLive["k2"][t0+1000] = 3
			},
			want: []string{"key k2 bucket 1700000004000: counted 3 > 2 acknowledged + 0 unknown"},
		},
		{
			name: "same producer and seq with other events",
			change: func(h *History) {
				h.Ops = append(h.Ops, ingest(7, 0, "k1", "p1", 1, Unknown, 200, 210, evs("k1", "p1", 1, t0, 3)))
			},
			want: []string{"producer p1 seq 1 was posted with different events by ops 0 and 7"},
		},
		{
			name: "event applied under two output IDs",
			change: func(h *History) {
				h.Alerts = append(h.Alerts, alert("0-90-0", h.Alerts[0].Data), alert("0-815-0", h.Alerts[0].Data))
			},
			want: []string{"event (p1, seq 1, #0) was applied 3 times: outputs 0-5-0, 0-90-0 and 0-815-0"},
		},
		{
			name:   "event applied twice",
			change: func(h *History) { h.Alerts = append(h.Alerts, alert("1-812-0", h.Alerts[1].Data)) },
			want:   []string{"event (p2, seq 1, #0) was applied twice: outputs 1-3-0 and 1-812-0"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := cleanHistory()
			c.change(h)
			expect(t, ExactlyOnce(h), c.ok, c.want...)
		})
	}
}

func TestExactlyOnceStats(t *testing.T) {
	v := ExactlyOnce(cleanHistory())
	want := map[string]string{
		"ingest ops ok": "2", "ingest ops unknown": "1", "ingest ops fail": "1",
		"events acked": "3", "events unknown": "1", "keys": "2", "buckets": "2",
	}
	for k, w := range want {
		if v.Stats[k] != w {
			t.Errorf("stats[%q] = %q, want %q (all: %v)", k, v.Stats[k], w, v.Stats)
		}
	}
}

func TestProblemsCapped(t *testing.T) {
	h := cleanHistory()
	for i := range 30 {
		h.FinalLive[fmt.Sprintf("x%02d", i)] = map[int64]int64{0: 1}
	}
	v := ExactlyOnce(h)
	if v.OK || len(v.Problems) != maxProblems+1 {
		t.Fatalf("OK %v with %d problems listed, want a failure listing %d", v.OK, len(v.Problems), maxProblems+1)
	}
	if !strings.HasPrefix(v.Problems[0], "key x00 bucket 0:") || !strings.HasPrefix(v.Problems[maxProblems-1], "key x19 bucket 0:") {
		t.Errorf("problems not in key order: %q", v.Problems)
	}
	if last := v.Problems[maxProblems]; last != "... and 10 more" {
		t.Errorf("last line %q, want the count of the rest", last)
	}
}

func TestNilHistory(t *testing.T) {
	for _, v := range All(nil, "") {
		if v.Name == "" {
			t.Errorf("verdict without a name: %+v", v)
		}
	}
}
