package agg

// Unflushed is the flush backlog: how many rows (one per granularity a cell stands for)
// changed after the greatest flushed index DropFlushed was given, counted as rows change.
// A state decoded from bytes counts every row until its first DropFlushed.
func (s *State) Unflushed() int { return s.pending }

// countPending recounts the rows changed after the mark.
func (s *State) countPending() {
	n := 0
	for _, g := range s.groups {
		for j := range g.cells {
			if c := &g.cells[j]; c.index() > s.mark {
				n += c.hi() - c.lo() + 1
			}
		}
	}
	s.pending = n
}

// ChangedCounts adds to counts, per log index after since, how many rows (one per
// granularity a cell stands for) were last changed at that index: what a flusher cuts into
// chunks of ChangedIn. It builds no rows.
func (s *State) ChangedCounts(since uint64, counts map[uint64]int) {
	for _, g := range s.groups {
		for j := range g.cells {
			if c := &g.cells[j]; c.index() > since {
				counts[c.index()] += c.hi() - c.lo() + 1
			}
		}
	}
}

// MarkFlushed tells the state that rows changed at or before index are flushed, without
// dropping any (DropFlushed does both): a state decoded from bytes learns its group's
// flushed index so that Unflushed counts from it.
func (s *State) MarkFlushed(index uint64) {
	s.mark = max(s.mark, index)
	s.countPending()
}
