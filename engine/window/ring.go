package window

import (
	"math"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// colKind is how a ring column stores its values.
type colKind uint8

const (
	colNum colKind = iota // int, long, bool (I) or float, double (F's bits) in nums
	colStr                // string or object text in strs
	colAny                // whole values: a value that did not fit the column's kind came
)

// column is one attribute of the events a ring holds. Every kind keeps each value's type
// tag, so a null or a value of another numeric type comes back exactly as it went in.
type column struct {
	kind colKind
	tags []siddhiql.Type
	nums []uint64
	strs []string
	vals []expr.Value
}

// ring holds the events of a sliding window, oldest first, in columns: per attribute a
// slice of the primitive type (or of strings), plus the arrival times. Slots are used
// circularly (the capacity is a power of two); expiry advances the head and adding an event
// copies its values into the next slot, so no event costs an allocation of its own.
type ring struct {
	cols  []column
	times []int64
	head  int // slot of the oldest event
	n     int // events held

	scratch []expr.Value // backing of the rows handed out by next
	used    int          // values of scratch handed out

	// The rows contents handed out, kept for the next call (a join reads a window's
	// contents for every chunk of the other input): events [from, to) in push order.
	pushed, popped uint64 // events ever pushed and popped
	cache          []expr.Row
	from, to       uint64
}

func newRing(attrs []siddhiql.Attribute) *ring {
	r := &ring{cols: make([]column, len(attrs))}
	for i, a := range attrs {
		if a.Type == siddhiql.TypeString || a.Type == siddhiql.TypeObject {
			r.cols[i].kind = colStr
		}
	}
	return r
}

func (r *ring) len() int { return r.n }

// slot is the slot of the i-th oldest event.
func (r *ring) slot(i int) int { return (r.head + i) & (len(r.times) - 1) }

// time is the arrival time of the i-th oldest event.
func (r *ring) time(i int) int64 { return r.times[r.slot(i)] }

// fits reports whether v is stored exactly by a column of kind k.
func fits(k colKind, v expr.Value) bool {
	switch v.T {
	case siddhiql.TypeInvalid:
		return v.I == 0 && v.F == 0 && v.S == ""
	case siddhiql.TypeString, siddhiql.TypeObject:
		return k == colStr && v.I == 0 && v.F == 0
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		return k == colNum && v.I == 0 && v.S == ""
	}
	return k == colNum && v.F == 0 && v.S == ""
}

// minSlots is the fewest slots a ring holding events has.
const minSlots = 4

// grow doubles the slots (to at least need).
func (r *ring) grow(need int) {
	c := max(len(r.times)*2, minSlots)
	for c < need {
		c *= 2
	}
	r.resize(c)
}

// resize moves the events to c slots (a power of two, at least r.n), in order from slot 0.
func (r *ring) resize(c int) {
	times := make([]int64, c)
	for i := range r.n {
		times[i] = r.times[r.slot(i)]
	}
	for j := range r.cols {
		col := &r.cols[j]
		tags := make([]siddhiql.Type, c)
		for i := range r.n {
			tags[i] = col.tags[r.slot(i)]
		}
		col.tags = tags
		switch col.kind {
		case colNum:
			nums := make([]uint64, c)
			for i := range r.n {
				nums[i] = col.nums[r.slot(i)]
			}
			col.nums = nums
		case colStr:
			strs := make([]string, c)
			for i := range r.n {
				strs[i] = col.strs[r.slot(i)]
			}
			col.strs = strs
		default:
			vals := make([]expr.Value, c)
			for i := range r.n {
				vals[i] = col.vals[r.slot(i)]
			}
			col.vals = vals
		}
	}
	r.times, r.head = times, 0
}

// toAny turns column j into whole values, for a value its kind cannot hold.
func (r *ring) toAny(j int) {
	col := &r.cols[j]
	vals := make([]expr.Value, len(r.times))
	for s := range vals {
		vals[s] = col.value(s)
	}
	col.kind, col.vals, col.nums, col.strs = colAny, vals, nil, nil
}

// value is the value in slot s.
func (col *column) value(s int) expr.Value {
	t := col.tags[s]
	switch col.kind {
	case colNum:
		if t == siddhiql.TypeFloat || t == siddhiql.TypeDouble {
			return expr.Value{T: t, F: math.Float64frombits(col.nums[s])}
		}
		return expr.Value{T: t, I: int64(col.nums[s])}
	case colStr:
		return expr.Value{T: t, S: col.strs[s]}
	}
	return col.vals[s]
}

func (col *column) set(s int, v expr.Value) {
	col.tags[s] = v.T
	switch col.kind {
	case colNum:
		if v.T == siddhiql.TypeFloat || v.T == siddhiql.TypeDouble {
			col.nums[s] = math.Float64bits(v.F)
		} else {
			col.nums[s] = uint64(v.I)
		}
	case colStr:
		col.strs[s] = v.S
	default:
		col.vals[s] = v
	}
}

// push adds an event arrived at t as the newest.
func (r *ring) push(t int64, row expr.Row) {
	if r.n == len(r.times) {
		r.grow(r.n + 1)
	}
	s := r.slot(r.n)
	r.times[s] = t
	for j, v := range row {
		col := &r.cols[j]
		if col.kind != colAny && !fits(col.kind, v) {
			r.toAny(j)
		}
		col.set(s, v)
	}
	r.n++
	r.pushed++
}

// pop drops the oldest event.
func (r *ring) pop() {
	s := r.head
	for j := range r.cols {
		switch col := &r.cols[j]; col.kind {
		case colStr:
			col.strs[s] = "" // let the string go
		case colAny:
			col.vals[s] = expr.Value{}
		}
	}
	r.head = (r.head + 1) & (len(r.times) - 1)
	r.n--
	r.popped++
	if r.n == 0 {
		r.head = 0
	}
	if c := len(r.times); c > minSlots && r.n <= c/4 {
		r.resize(c / 2) // a burst's slots go back once the window holds a quarter of them
	}
}

// clear drops every event, keeping the slots.
func (r *ring) clear() {
	for r.n > 0 {
		r.pop()
	}
}

// row copies the i-th oldest event into dst (of the stream's width).
func (r *ring) row(i int, dst expr.Row) {
	s := r.slot(i)
	for j := range r.cols {
		dst[j] = r.cols[j].value(s)
	}
}

// next returns room for one row in the scratch space. The rows handed out since the last
// resetScratch stay valid together: a full block is replaced, never written over.
func (r *ring) next() expr.Row {
	w := len(r.cols)
	if r.used+w > len(r.scratch) {
		r.scratch = make([]expr.Value, max(2*len(r.scratch), 4*w))
		r.used = 0
	}
	row := r.scratch[r.used : r.used+w : r.used+w]
	r.used += w
	return row
}

// resetScratch lets the scratch space be written over (or, when small, lets it go), and
// lets go of the values in it: the rows handed out before are done with.
func (r *ring) resetScratch() {
	if len(r.scratch) < keepScratch*len(r.cols) {
		r.scratch, r.used = nil, 0 // small: made again when needed
		return
	}
	clear(r.scratch[:r.used])
	r.used = 0
}

// take copies the oldest event into a scratch row and drops it.
func (r *ring) take() (int64, expr.Row) {
	row := r.next()
	r.row(0, row)
	t := r.times[r.head]
	r.pop()
	return t, row
}

// value is attribute j of the i-th oldest event.
func (r *ring) value(i, j int) expr.Value { return r.cols[j].value(r.slot(i)) }

// contents returns copies of every event's row, oldest first. The rows of events still held
// from the last call are reused, so a call copies only the events pushed since. The rows
// must not be modified; a slice returned stays as it was when the ring changes.
func (r *ring) contents() []expr.Row {
	// Rows handed out before are never written over: the cache drops rows from its front
	// and appends past the end of every slice it returned.
	if r.to <= r.popped { // nothing kept is still held
		r.cache, r.from, r.to = nil, r.popped, r.popped
	} else if r.from < r.popped {
		r.cache, r.from = r.cache[r.popped-r.from:], r.popped
	}
	if r.to < r.pushed {
		w := len(r.cols)
		slab := make([]expr.Value, int(r.pushed-r.to)*w)
		for i := int(r.to - r.popped); i < r.n; i++ {
			row := slab[:w:w]
			slab = slab[w:]
			r.row(i, row)
			r.cache = append(r.cache, row)
		}
		r.to = r.pushed
	}
	return r.cache[:len(r.cache):len(r.cache)]
}

// encode writes the events as encodeEvents writes a slice of them.
func (r *ring) encode(w *wire.Writer) {
	w.Uvarint(uint64(r.n))
	for i := range r.n {
		s := r.slot(i)
		w.Varint(r.times[s])
		w.Uvarint(uint64(len(r.cols)))
		for j := range r.cols {
			r.cols[j].value(s).Encode(w)
		}
	}
}

// decode replaces the events with those written by encode (or encodeEvents).
func (r *ring) decode(rd *wire.Reader, width int) {
	r.clear()
	row := make(expr.Row, width)
	n := rd.Count(2)
	for range n {
		t := rd.Varint()
		if !decodeEventRow(rd, width, row) {
			r.clear()
			return
		}
		r.push(t, row)
	}
}
