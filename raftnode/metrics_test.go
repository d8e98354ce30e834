package raftnode

import (
	"sync"
	"testing"
)

func TestHistogram(t *testing.T) {
	h := NewHistogram([]float64{1, 2, 4})
	var wg sync.WaitGroup
	for _, v := range []float64{0.5, 1, 1.5, 3, 100} {
		wg.Go(func() { h.Observe(v) })
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != 5 || s.Sum != 106 {
		t.Errorf("count %d sum %v, want 5 and 106", s.Count, s.Sum)
	}
	// Cumulative: ≤1 holds 0.5 and 1; ≤2 adds 1.5; ≤4 adds 3; 100 is only in +Inf (Count).
	for b, want := range map[float64]uint64{1: 2, 2: 3, 4: 4} {
		if got := s.Buckets[b]; got != want {
			t.Errorf("bucket ≤%v = %d, want %d", b, got, want)
		}
	}
	if len(s.Buckets) != 3 {
		t.Errorf("buckets %v", s.Buckets)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewHistogram(latencyBuckets)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(0.003)
		}
	})
}
