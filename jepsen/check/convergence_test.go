package check

import "testing"

func TestConvergence(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(h *History)
		ok     bool
		want   []string
	}{
		{name: "clean", change: func(*History) {}, ok: true},
		{
			name: "divergent replica",
			change: func(h *History) {
				h.Replicas = append(h.Replicas, ReplicaSample{Node: "n3", Group: 1, Index: 3, Hash: "bad"})
			},
			want: []string{"group 1 index 3: replicas differ: n1 has g3, n2 has g3, n3 has bad"},
		},
		{
			name: "one node's hash changes at one index",
			change: func(h *History) {
				h.Replicas = append(h.Replicas, ReplicaSample{Node: "n3", Group: 1, Index: 2, Hash: "g2'"})
			},
			want: []string{"group 1 index 2: replicas differ: n3 has g2 and g2'"},
		},
		{
			name: "nothing compared for a group",
			change: func(h *History) {
				h.Replicas = append(h.Replicas,
					ReplicaSample{Node: "n1", Group: 2, Index: 7, Hash: "x"},
					ReplicaSample{Node: "n1", Group: 2, Index: 7, Hash: "x"},
					ReplicaSample{Node: "n2", Group: 2, Index: 8, Hash: "y"})
			},
			want: []string{"nothing compared for group 2"},
		},
		{
			name:   "no samples",
			change: func(h *History) { h.Replicas = nil },
			want:   []string{"no replica samples were recorded"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := cleanHistory()
			c.change(h)
			expect(t, Convergence(h), c.ok, c.want...)
		})
	}
	if got := Convergence(cleanHistory()).Stats["(group, index) compared"]; got != "2" {
		t.Errorf("compared = %q, want 2", got)
	}
}
