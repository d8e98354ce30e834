package check

import "testing"

func TestStoreMonotonic(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(h *History)
		ok     bool
		want   []string
	}{
		{name: "clean", change: func(*History) {}, ok: true},
		{
			name: "samples out of order in the history",
			change: func(h *History) {
				h.Stored[0], h.Stored[1] = h.Stored[1], h.Stored[0]
			},
			ok: true,
		},
		{
			name: "zero and absent buckets agree",
			change: func(h *History) {
				h.FinalLive["k1"][t0+5000] = 0
			},
			ok: true,
		},
		{
			name: "stored count goes back",
			change: func(h *History) {
				h.Stored = append(h.Stored,
					StoreSample{Key: "k1", Count: 12, At: msec(3200)},
					StoreSample{Key: "k1", Count: 9, At: msec(4100)},
					StoreSample{Key: "k1", Count: 10, At: msec(4500)})
				h.FinalLive["k1"][t0] = 12
				h.FinalStored["k1"][t0] = 12
			},
			want: []string{"stored count of key k1 went back from 12 to 9 between 3.2s and 4.1s"},
		},
		{
			name: "final stored count below the last sample",
			change: func(h *History) {
				h.Stored = append(h.Stored, StoreSample{Key: "k2", Count: 4, At: msec(2500)})
			},
			want: []string{"stored count of key k2 went back from 4 at 2.5s to 1 in the final read"},
		},
		{
			name:   "stored count differs",
			change: func(h *History) { h.FinalStored["k1"][t0] = 1 },
			want: []string{
				"stored count of key k1 went back from 2 at 2s to 1 in the final read",
				"key k1 bucket 1700000003000: stored count 1, live count 2",
			},
		},
		{
			name:   "bucket missing from the store",
			change: func(h *History) { delete(h.FinalStored, "k2") },
			want: []string{
				"stored count of key k2 went back from 1 at 2s to 0 in the final read",
				"key k2 bucket 1700000004000: missing from the store, live count 1",
			},
		},
		{
			name:   "extra bucket in the store",
			change: func(h *History) { h.FinalStored["k1"][t0+9000] = 3 },
			want:   []string{"key k1 bucket 1700000012000: stored count 3, but the bucket is not live"},
		},
		{
			name:   "no final stored counts",
			change: func(h *History) { h.FinalStored = nil },
			want:   []string{"no final stored counts were recorded, though the live counts hold 3 events"},
		},
		{
			name:   "no final live counts",
			change: func(h *History) { h.FinalLive = nil },
			want:   []string{"no final live counts were recorded, though ops were acknowledged"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := cleanHistory()
			c.change(h)
			expect(t, StoreMonotonic(h), c.ok, c.want...)
		})
	}
}
