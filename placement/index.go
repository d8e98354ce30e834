package placement

import "slices"

// loadIndex orders a set of nodes by (load, node index), the order every placement choice
// breaks ties in. Loads are small integers that change by one, so nodes sit in one bucket
// per load, each bucket sorted by node index: finding the least or most loaded node costs a
// step per empty bucket skipped, and changing a load costs a copy within a bucket.
type loadIndex struct {
	buckets [][]int32 // buckets[l] holds the nodes with load l, ascending
	lo      int       // no bucket below lo holds a node
	n       int       // nodes held
}

func (x *loadIndex) insert(node int32, load int) {
	for len(x.buckets) <= load {
		x.buckets = append(x.buckets, nil)
	}
	b := x.buckets[load]
	i, _ := slices.BinarySearch(b, node)
	x.buckets[load] = slices.Insert(b, i, node)
	if x.n == 0 || load < x.lo {
		x.lo = load
	}
	x.n++
}

// remove takes node out; it must be held with that load.
func (x *loadIndex) remove(node int32, load int) {
	b := x.buckets[load]
	i, found := slices.BinarySearch(b, node)
	if !found {
		panic("placement: loadIndex.remove of a node not held")
	}
	x.buckets[load] = slices.Delete(b, i, i+1)
	x.n--
	for len(x.buckets) > 0 && len(x.buckets[len(x.buckets)-1]) == 0 {
		x.buckets = x.buckets[:len(x.buckets)-1]
	}
}

// min returns the lowest load held; ok is false when the index is empty.
func (x *loadIndex) min() (load int, ok bool) {
	if x.n == 0 {
		return 0, false
	}
	for len(x.buckets[x.lo]) == 0 {
		x.lo++
	}
	return x.lo, true
}

// max returns the most loaded node (the lowest index among equals) and its load.
func (x *loadIndex) max() (node int32, load int, ok bool) {
	if x.n == 0 {
		return 0, 0, false
	}
	l := len(x.buckets) - 1
	return x.buckets[l][0], l, true
}

// first returns the least loaded node with load at most limit that is not in exclude and
// for which keep (when not nil) is true. Among nodes of equal load it takes the first in
// node order starting at a position given by seed (and wrapping), so that groups with
// different seeds spread over equally loaded nodes instead of all landing on the same few.
func (x *loadIndex) first(limit int, exclude []int32, seed uint32, keep func(int32) bool) (node int32, load int, ok bool) {
	lo, ok := x.min()
	if !ok {
		return 0, 0, false
	}
	for l := lo; l <= limit && l < len(x.buckets); l++ {
		b := x.buckets[l]
		if len(b) == 0 {
			continue
		}
		start := int(seed % uint32(len(b)))
		for i := range b {
			j := start + i
			if j >= len(b) {
				j -= len(b)
			}
			if !slices.Contains(exclude, b[j]) && (keep == nil || keep(b[j])) {
				return b[j], l, true
			}
		}
	}
	return 0, 0, false
}
