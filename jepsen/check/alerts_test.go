package check

import (
	"slices"
	"testing"
)

func TestAlerts(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(h *History)
		ok     bool
		want   []string
	}{
		{name: "clean", change: func(*History) {}, ok: true},
		{
			name: "alert for an unknown ingest",
			change: func(h *History) {
				e := h.Ops[3].Events[0]
				e.V = 8
				h.Ops[3].Events[0] = e
				h.Alerts = append(h.Alerts, alert("1-6-0", e))
			},
			ok: true,
		},
		{
			name: "bodies differ",
			change: func(h *History) {
				h.Alerts = append(h.Alerts, h.Alerts[1])
				h.Alerts[3].Body = `{"id":"1-3-0","data":{}}`
			},
			want: []string{`output 1-3-0 delivered twice with different bodies: "{\"id\":\"1-3-0\",\"data\":{\"key\":\"k2\"`},
		},
		{
			name:   "missing alert",
			change: func(h *History) { h.Alerts = h.Alerts[:2]; h.Alerts = h.Alerts[1:] },
			want:   []string{"alert missing for acknowledged event (p1, seq 1, #0) of key k1 (ts 1700000003000, v 9)"},
		},
		{
			name: "phantom alert never written",
			change: func(h *History) {
				h.Alerts = append(h.Alerts, alert("0-8-0", Event{Key: "k1", Producer: "p7", Seq: 3, TS: t0, V: 9}))
			},
			want: []string{"phantom alert 0-8-0: event (p7, seq 3, #0) was never written"},
		},
		{
			name: "phantom alert of a failed ingest",
			change: func(h *History) {
				h.Alerts = append(h.Alerts, alert("0-8-0", h.Ops[4].Events[0]))
			},
			want: []string{"phantom alert 0-8-0: event (p1, seq 2, #0) belongs to an ingest that failed"},
		},
		{
			name: "phantom alert with another value",
			change: func(h *History) {
				e := h.Ops[2].Events[0]
				e.V = 70
				h.Alerts[1] = alert("1-3-0", e)
			},
			want: []string{"phantom alert 1-3-0: event (p2, seq 1, #0) was written with key k2 ts 1700000004000 v 7, but the alert has key k2 ts 1700000004000 v 70"},
		},
		{
			name: "phantom alert below the minimum",
			change: func(h *History) {
				h.Alerts = append(h.Alerts, alert("0-5-1", h.Ops[0].Events[1]))
			},
			want: []string{"phantom alert 0-5-1: event (p1, seq 1, #1) has v 1, below the alert minimum 5"},
		},
		{
			name: "phantom alert of an event number never written",
			change: func(h *History) {
				e := h.Ops[2].Events[0]
				e.I = 4
				h.Alerts = append(h.Alerts, alert("1-3-1", e))
			},
			want: []string{"phantom alert 1-3-1: ingest (p2, seq 1) has no event #4"},
		},
		{
			name: "subscriber gap",
			change: func(h *History) {
				h.Retained = []Output{sub("0-90-0", 0), sub("0-93-1", 0), sub("0-97-0", 0), sub("0-98-0", 0),
					sub("0-99-0", 0), sub("0-99-1", 0), sub("0-100-0", 0)}
				h.Subscribed = [][]Output{
					{sub("0-90-0", 0), sub("0-97-0", 0), sub("0-98-0", 0), sub("0-100-0", 0)},
					{sub("0-93-1", 0), sub("0-97-0", 0)},
				}
			},
			want: []string{
				"subscriber 0 skipped output 0-93-1 between 0-90-0 and 0-97-0",
				"subscriber 0 skipped 2 outputs, 0-99-0 to 0-99-1, between 0-98-0 and 0-100-0",
			},
		},
		{
			name: "subscriber out of order",
			change: func(h *History) {
				s := h.Subscribed[0]
				s[3], s[4] = s[4], s[3] // 1-4-0 is another group: still in order
				h.Subscribed[1] = []Output{sub("0-9-0", 0), sub("0-7-1", 0), sub("1-4-0", 0)}
			},
			want: []string{"subscriber 1 connection 0 got output 0-7-1 after 0-9-0 (out of order)"},
		},
		{
			name: "subscriber repeats an output on one connection",
			change: func(h *History) {
				h.Subscribed[1] = append(h.Subscribed[1], sub("0-9-0", 0))
			},
			want: []string{"subscriber 1 connection 0 got output 0-9-0 twice"},
		},
		{
			name: "subscriber body differs from the retained one",
			change: func(h *History) {
				h.Subscribed[1][0].Body = "other"
			},
			want: []string{`subscriber 1 got output 0-9-0 with body "other", but the retained body is "w 0-9-0"`},
		},
		{
			name: "subscriber bodies differ between deliveries",
			change: func(h *History) {
				h.Subscribed[0][2].Body = "other"
			},
			want: []string{`subscriber 0: output 0-7-1 delivered twice with different bodies: "w 0-7-1" and "other"`},
		},
		{
			name: "subscriber output not retained",
			change: func(h *History) {
				h.Subscribed[1] = []Output{sub("0-7-1", 0), sub("0-8-0", 0), sub("0-9-0", 0), sub("1-4-0", 0)}
			},
			want: []string{"subscriber 1 got output 0-8-0, which is not among group 0's retained outputs"},
		},
		{
			name: "subscriber outputs outside the retained range are not judged",
			change: func(h *History) {
				h.Subscribed[1] = append([]Output{sub("0-2-0", 0)}, h.Subscribed[1]...)
				h.Subscribed[1] = append(h.Subscribed[1], sub("1-9-0", 0), sub("5-1-0", 0))
			},
			ok: true,
		},
		{
			name: "malformed IDs",
			change: func(h *History) {
				h.Subscribed[1] = append(h.Subscribed[1], sub("0-x-1", 0))
				h.Retained = append(h.Retained, sub("7-7", 0))
			},
			want: []string{`subscriber 1 got an output with malformed ID "0-x-1"`, `retained list: malformed output ID "7-7"`},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := cleanHistory()
			c.change(h)
			expect(t, Alerts(h), c.ok, c.want...)
		})
	}
}

func TestAlertsStats(t *testing.T) {
	v := Alerts(cleanHistory())
	want := map[string]string{
		"deliveries": "3", "distinct ids": "2", "duplicate deliveries": "1", "alerts expected": "2",
		"subscribers": "2", "subscriber deliveries": "7", "retained": "4",
	}
	for k, w := range want {
		if v.Stats[k] != w {
			t.Errorf("stats[%q] = %q, want %q (all: %v)", k, v.Stats[k], w, v.Stats)
		}
	}
}

func TestCompareIDStrings(t *testing.T) {
	ids := []string{"1-2-0", "0-10-0", "0-9-1", "bad", "0-9-0", "0-10-2"}
	want := []string{"0-9-0", "0-9-1", "0-10-0", "0-10-2", "1-2-0", "bad"}
	got := append([]string(nil), ids...)
	sortIDs(got)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sorted %v, want %v", got, want)
		}
	}
}

func sortIDs(ids []string) { slices.SortFunc(ids, compareIDStrings) }
