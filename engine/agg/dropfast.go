package agg

import "math"

// DropFlushed's fast pass. A full pass looks at every group; at a million keys that is most
// of a tick's apply time, though a pass mostly finds a few rows to drop: those last changed
// after the previous pass's index and now flushed, and those whose finest-granularity bucket
// was open at the previous pass and has closed since. Both kinds belong to groups changed
// recently, which the state remembers (recent) until a pass no longer needs them. The
// choice of pass changes nothing but the time taken: a fast pass drops exactly what a full
// one would (TestSharedCells compares them).
//
// After a pass with index I and open buckets O, every row left is last changed after I or
// in an arrival bucket not before O at its granularity. So at the next pass (index I', open
// buckets O') a row that may go and was not looked at before is either last changed in
// (I, I'] (its group is remembered with that index) or, at the finest granularity, in a
// bucket in [O[0], O'[0]) (its group was remembered at an arrival time at or after O[0]).
// Rows of coarser granularities become droppable when their buckets close, which takes a
// full pass (a minute's close, say, once a minute).

// touch is one remembered change: group g changed at log index index, arrival time at.
type touch struct {
	g     *group
	index uint64
	at    int64
}

// fastDrop is the bookkeeping of the fast pass. None of it is state: a decoded state
// starts without it and makes a full pass first.
type fastDrop struct {
	// recent are the changes since the last pass that the next one may need, in order.
	recent []touch
	// ok is set once a full pass has run; index and open are the last pass's.
	ok    bool
	index uint64
	open  []int64
	// need is the greatest index of a change not remembered (made before the state was
	// decoded or joins began or stopped reading it), and needAt the latest arrival time of
	// one: a fast pass needs a pass at or past need, in a finest bucket after needAt's.
	need   uint64
	needAt int64
	// trimmed is the greatest index a pass trimmed recent by: changes at or before it may be
	// forgotten, so after a pass at a smaller index (a late KindFlushed) the next is full.
	trimmed uint64
	// off makes every pass a full one (tests compare both); limit, when set, replaces
	// recentLimit's floor.
	off   bool
	limit int
}

// recentLimit bounds how many changes a state remembers (at least this many, or one per
// group): past it, as when no pass comes (no shared store), it forgets them all and the
// passes are full ones until one is past what it forgot.
const recentLimit = 8192

// touched remembers that g changed at index, at the state's arrival time.
func (s *State) touched(g *group, index uint64) {
	f := &s.fast
	if f.off || s.retain != nil {
		return
	}
	if n := len(f.recent); n > 0 && f.recent[n-1].g == g && f.recent[n-1].index == index {
		return
	}
	limit := recentLimit
	if f.limit > 0 {
		limit = f.limit
	}
	if len(f.recent) >= max(limit, len(s.groups)) {
		s.forgetFast(index) // every change forgotten is at or before index
	}
	f.recent = append(f.recent, touch{g: g, index: index, at: s.now})
}

// forgetFast makes the next pass a full one, and the passes fast only from one at or past
// need, the greatest index of a change it forgets.
func (s *State) forgetFast(need uint64) {
	s.fast.ok, s.fast.need, s.fast.needAt, s.fast.trimmed = false, need, s.now, 0
	clear(s.fast.recent)
	s.fast.recent = s.fast.recent[:0]
}

// maxIndex is the greatest index of a row's last change.
func (s *State) maxIndex() uint64 {
	var m uint64
	for _, g := range s.groups {
		for j := range g.cells {
			m = max(m, g.cells[j].index())
		}
	}
	return m
}

// fastOK reports whether a fast pass finds every row DropFlushed may drop now: no bucket
// but the finest granularity's has moved since the last pass, and times are from 1970 on
// (before, seconds round towards zero and a bucket can start after the time in it).
func (s *State) fastOK() bool {
	f := &s.fast
	if !f.ok || f.index < f.need || f.index < f.trimmed || f.off || s.retain != nil || len(s.open) == 0 || f.open[0] < 0 || f.open[0] <= f.needAt {
		return false
	}
	for k := 1; k < len(s.open); k++ {
		if s.open[k] != f.open[k] {
			return false
		}
	}
	return true
}

// dropFast is DropFlushed's fast pass with gone as its rule; the mark is already moved from
// prevMark. It returns how many rows it dropped.
func (s *State) dropFast(index, prevMark uint64, gone func(c *cell, k int) bool) int {
	f := &s.fast
	if s.mark > prevMark {
		// Rows last changed in (prevMark, mark] leave the backlog; their groups are
		// remembered with those indexes (every change after the last pass's index is).
		seen := map[*group]struct{}{}
		for _, t := range f.recent {
			if t.index <= prevMark || t.index > s.mark {
				continue
			}
			if _, ok := seen[t.g]; ok {
				continue
			}
			seen[t.g] = struct{}{}
			for j := range t.g.cells {
				if c := &t.g.cells[j]; c.index() > prevMark && c.index() <= s.mark {
					s.pending -= c.hi() - c.lo() + 1
				}
			}
		}
	}
	closed := s.open[0] != f.open[0]
	n := 0
	for _, t := range f.recent {
		if (t.index > f.index && t.index <= index) || (closed && t.at >= f.open[0]) {
			n += s.dropIn("", t.g, gone)
		}
	}
	return n
}

// passed records a pass with index and trims what the next pass no longer needs: changes
// at or before index in a closed bucket of the finest granularity.
func (s *State) passed(index uint64) {
	f := &s.fast
	if f.off || s.retain != nil {
		s.forgetFast(math.MaxUint64) // Retain forgets again when joins stop
		return
	}
	f.ok, f.index, f.trimmed = true, index, max(f.trimmed, index)
	f.open = append(f.open[:0], s.open...)
	keep := f.recent[:0]
	for _, t := range f.recent {
		if t.index > index || (len(s.open) > 0 && t.at >= s.open[0]) {
			keep = append(keep, t)
		}
	}
	clear(f.recent[len(keep):])
	f.recent = keep
}

// keyOf is group g's key, computed again from its values.
func (s *State) keyOf(g *group) string {
	var kb []byte
	for _, v := range g.values {
		kb = v.Key(kb)
	}
	return string(kb)
}
