package window

import (
	"math"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// colKind is how a ring column stores its values.
type colKind uint8

const (
	colNum colKind = iota // int, long, bool (I) or float, double (F's bits) in a block's nums
	colID                 // string or object text: an id into the column's dictionary in ids
	colStr                // string or object text in the block's strs: a small ring, or too many distinct strings
	colAny                // whole values: a value that did not fit the column's kind came
)

// column is one attribute of the events a ring holds. Every kind keeps each value's type
// tag, so a null or a value of another numeric type comes back exactly as it went in.
type column struct {
	kind  colKind
	at    int   // the column's place in a row of a block's nums (colNum) or ids (colID)
	dict  *dict // the strings of a colID column
	plain bool  // a string column that keeps plain strings for good
}

// dict numbers the distinct strings a column holds. Id 0 is the empty string, never
// counted; other ids are counted by the events holding them and reused once none does.
type dict struct {
	ids  map[string]uint32
	strs []string // by id; a copy of the string pushed, so no larger string is kept alive
	refs []uint32 // events holding each id
	free []uint32 // ids no event holds
}

// ref counts one more event holding s, numbering s if it is new.
func (d *dict) ref(s string) uint32 {
	if s == "" {
		return 0
	}
	if id, ok := d.ids[s]; ok {
		d.refs[id]++
		return id
	}
	return d.add(s)
}

// add numbers s, a string the dictionary does not hold, for one event.
func (d *dict) add(s string) uint32 {
	s = strings.Clone(s)
	var id uint32
	if n := len(d.free); n > 0 {
		id, d.free = d.free[n-1], d.free[:n-1]
		d.strs[id], d.refs[id] = s, 1
	} else {
		id = uint32(len(d.strs))
		d.strs, d.refs = append(d.strs, s), append(d.refs, 1)
	}
	d.ids[s] = id
	return id
}

// release counts one event less holding id, freeing the id when none is left.
func (d *dict) release(id uint32) {
	if id == 0 {
		return
	}
	if d.refs[id]--; d.refs[id] == 0 {
		delete(d.ids, d.strs[id])
		d.strs[id] = ""
		d.free = append(d.free, id)
	}
}

// block holds consecutive events of a ring, each in the same slot of every slice. tags,
// nums and ids are laid out by slot: slot s's tags are tags[s*width:(s+1)*width], and so on.
// strs and vals are per column, made for the columns of those kinds only.
type block struct {
	times []int64
	tags  []siddhiql.Type
	nums  []uint64
	ids   []uint32
	strs  [][]string
	vals  [][]expr.Value
}

// Block sizes: a ring of more than one block has blocks of 1<<blockShift slots; a ring
// that fits one block starts with minSlots slots and doubles them as it grows. A time
// window expires a batch before it adds the next, so a block at least as large as a batch
// (1024 slots; `tally bench` sends 1000-event batches) lets the one spare block
// cover the batch's new events; smaller blocks cost an allocation per block a batch spans
// beyond the first, and were no faster.
const (
	blockShift = 10
	minSlots   = 4
	// minDict is the most distinct strings a string column's dictionary holds however few
	// events the ring holds; past max(minDict, events/4) the column keeps plain strings.
	minDict = 4096
)

// ring holds the events of a sliding window, oldest first, in columns: per attribute a
// slice of the primitive type (strings by id into a dictionary), plus the arrival times,
// in fixed-size blocks. Adding an event writes its values into the next slot of the newest
// block (a new block when it is full); expiry advances through the oldest block and lets
// it go once empty, keeping one spare, so a window that stays the same size allocates
// nothing and no event is moved after it was added. A ring that fits one block uses a
// smaller block first (so the many small windows of a partition stay small), doubling it up
// to the full size: the only time events are moved. Until then its string columns keep
// plain strings: a dictionary pays only for a window of many events.
type ring struct {
	cols    []column
	nums    int // colNum columns
	strCols int // string columns (the ids a slot has)

	shift   uint // blocks have 1<<shift slots (but a ring's only block may have fewer)
	minDict int

	blks  []*block // the blocks in use are blks[bh:]
	bh    int
	spare *block // a full-size block for the next one needed
	off   int    // slot of the oldest event in blks[bh]
	n     int    // events held

	scratch []expr.Value // backing of the rows handed out by next
	used    int          // values of scratch handed out

	// The rows contents handed out, kept for the next call (a join reads a window's
	// contents for every chunk of the other input): events [from, to) in push order.
	pushed, popped uint64 // events ever pushed and popped
	cache          []expr.Row
	from, to       uint64
}

func newRing(attrs []siddhiql.Attribute) *ring { return newRingSized(attrs, blockShift, minDict) }

// newRingSized is newRing with blocks of 1<<shift slots and dictionaries of at least
// minDict strings.
func newRingSized(attrs []siddhiql.Attribute, shift uint, minDict int) *ring {
	r := &ring{cols: make([]column, len(attrs)), shift: shift, minDict: minDict}
	for i, a := range attrs {
		col := &r.cols[i]
		if a.Type == siddhiql.TypeString || a.Type == siddhiql.TypeObject {
			col.kind, col.at = colStr, r.strCols // ids once the ring is larger than one small block
			r.strCols++
		} else {
			col.at = r.nums
			r.nums++
		}
	}
	return r
}

func (r *ring) len() int { return r.n }

// at is the block and slot of the i-th oldest event.
func (r *ring) at(i int) (*block, int) {
	p := r.off + i
	return r.blks[r.bh+p>>r.shift], p & (1<<r.shift - 1)
}

// time is the arrival time of the i-th oldest event.
func (r *ring) time(i int) int64 {
	b, s := r.at(i)
	return b.times[s]
}

// fits reports whether v is stored exactly by a column of kind k.
func fits(k colKind, v expr.Value) bool {
	switch v.T {
	case siddhiql.TypeInvalid:
		return v.I == 0 && v.F == 0 && v.S == ""
	case siddhiql.TypeString, siddhiql.TypeObject:
		return (k == colID || k == colStr) && v.I == 0 && v.F == 0
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		return k == colNum && v.I == 0 && v.S == ""
	}
	return k == colNum && v.F == 0 && v.S == ""
}

// newBlock makes a block of c slots for the columns' present kinds.
func (r *ring) newBlock(c int) *block {
	w := len(r.cols)
	b := &block{
		times: make([]int64, c),
		tags:  make([]siddhiql.Type, c*w),
		nums:  make([]uint64, c*r.nums),
		ids:   make([]uint32, c*r.strCols),
	}
	for j := range r.cols {
		switch r.cols[j].kind {
		case colStr:
			b.strsOf(w)[j] = make([]string, c)
		case colAny:
			b.valsOf(w)[j] = make([]expr.Value, c)
		}
	}
	return b
}

// strsOf is b.strs, made for w columns if need be.
func (b *block) strsOf(w int) [][]string {
	if b.strs == nil {
		b.strs = make([][]string, w)
	}
	return b.strs
}

// valsOf is b.vals, made for w columns if need be.
func (b *block) valsOf(w int) [][]expr.Value {
	if b.vals == nil {
		b.vals = make([][]expr.Value, w)
	}
	return b.vals
}

// room makes a slot for the next event: a new block, or a larger or compacted only block.
func (r *ring) room() {
	full := 1 << r.shift
	if len(r.blks) == r.bh {
		b := r.spare
		if b == nil {
			b = r.newBlock(min(minSlots, full))
		}
		r.spare, r.off = nil, 0
		r.blks = append(r.blks[:0], b)
		r.bh = 0
		return
	}
	last := r.blks[len(r.blks)-1]
	c := len(last.times)
	if c == full {
		b := r.spare
		if b == nil {
			b = r.newBlock(full)
		}
		r.spare = nil
		r.blks = append(r.blks, b)
		return
	}
	// The only block, smaller than a full one, and full up to its last slot.
	dst := last
	if r.n > c/2 || r.off == 0 {
		dst = r.newBlock(min(2*c, full))
	}
	r.move(last, dst)
	r.blks[r.bh], r.off = dst, 0
	if len(dst.times) == full { // large now: string columns by dictionary id
		for j := range r.cols {
			if col := &r.cols[j]; col.kind == colStr && !col.plain {
				r.convert(j, colID)
			}
		}
	}
}

// move copies the events of the only block src to the first slots of dst.
func (r *ring) move(src, dst *block) {
	from, to, w := r.off, r.off+r.n, len(r.cols)
	copy(dst.times, src.times[from:to])
	copy(dst.tags, src.tags[from*w:to*w])
	copy(dst.nums, src.nums[from*r.nums:to*r.nums])
	copy(dst.ids, src.ids[from*r.strCols:to*r.strCols])
	for j := range r.cols {
		switch r.cols[j].kind {
		case colStr:
			copy(dst.strs[j], src.strs[j][from:to])
			clear(dst.strs[j][r.n:])
		case colAny:
			copy(dst.vals[j], src.vals[j][from:to])
			clear(dst.vals[j][r.n:])
		}
	}
}

// convert turns column j into kind k: colAny for a value its kind cannot hold, colStr for
// a dictionary grown too large, colID for a ring grown past a small block. Every block gets
// the column's values in the new form. A string column whose distinct strings are too many
// for a dictionary is not turned to ids but marked to keep plain strings.
func (r *ring) convert(j int, k colKind) {
	col := &r.cols[j]
	w := len(r.cols)
	var d *dict
	switch k {
	case colID:
		d = &dict{ids: map[string]uint32{}, strs: []string{""}, refs: []uint32{0}}
	case colStr:
		col.plain = true
	}
	for _, b := range r.blks[r.bh:] {
		switch k {
		case colStr:
			b.strsOf(w)[j] = make([]string, len(b.times))
		case colAny:
			b.valsOf(w)[j] = make([]expr.Value, len(b.times))
		}
	}
	for i := range r.n {
		b, s := r.at(i)
		v := r.get(b, s, j)
		switch k {
		case colStr:
			b.strs[j][s] = v.S
		case colAny:
			b.vals[j][s] = v
		default:
			if _, ok := d.ids[v.S]; !ok && v.S != "" && len(d.ids) >= max(r.minDict, r.n/4) {
				col.plain = true
				return // the ids written so far are not read
			}
			b.ids[s*r.strCols+col.at] = d.ref(v.S)
		}
	}
	for _, b := range r.blks[r.bh:] {
		if col.kind == colStr {
			b.strs[j] = nil
		}
	}
	col.kind, col.dict = k, d
	r.spare = nil // made for the old kind
}

// get is attribute j of the event in slot s of b.
func (r *ring) get(b *block, s, j int) expr.Value {
	col := &r.cols[j]
	t := b.tags[s*len(r.cols)+j]
	switch col.kind {
	case colNum:
		x := b.nums[s*r.nums+col.at]
		if t == siddhiql.TypeFloat || t == siddhiql.TypeDouble {
			return expr.Value{T: t, F: math.Float64frombits(x)}
		}
		return expr.Value{T: t, I: int64(x)}
	case colID:
		return expr.Value{T: t, S: col.dict.strs[b.ids[s*r.strCols+col.at]]}
	case colStr:
		return expr.Value{T: t, S: b.strs[j][s]}
	}
	return b.vals[j][s]
}

// push adds an event arrived at t as the newest.
func (r *ring) push(t int64, row expr.Row) {
	p := r.off + r.n
	if k := len(r.blks) - r.bh; k == 0 || p-(k-1)<<r.shift == len(r.blks[len(r.blks)-1].times) {
		r.room()
		p = r.off + r.n
	}
	b, s := r.blks[r.bh+p>>r.shift], p&(1<<r.shift-1)
	b.times[s] = t
	w := len(r.cols)
	tags := b.tags[s*w : s*w+w]
	nums := b.nums[s*r.nums : s*r.nums+r.nums]
	ids := b.ids[s*r.strCols : s*r.strCols+r.strCols]
	for j, v := range row {
		col := &r.cols[j]
		if !fits(col.kind, v) && col.kind != colAny {
			r.convert(j, colAny)
		}
		tags[j] = v.T
		switch col.kind {
		case colNum:
			x := uint64(v.I)
			if v.T == siddhiql.TypeFloat || v.T == siddhiql.TypeDouble {
				x = math.Float64bits(v.F)
			}
			nums[col.at] = x
		case colID:
			d := col.dict
			var id uint32
			if v.S != "" {
				var ok bool
				if id, ok = d.ids[v.S]; ok {
					d.refs[id]++
				} else if len(d.ids) < max(r.minDict, r.n/4) {
					id = d.add(v.S)
				} else {
					r.convert(j, colStr) // too many distinct strings: keep them as they are, for good
					b.strs[j][s] = v.S
					continue
				}
			}
			ids[col.at] = id
		case colStr:
			b.strs[j][s] = v.S
		default:
			b.vals[j][s] = v
		}
	}
	r.n++
	r.pushed++
}

// pop drops the oldest event.
func (r *ring) pop() {
	b, s := r.blks[r.bh], r.off
	for j := range r.cols {
		switch col := &r.cols[j]; col.kind {
		case colID:
			col.dict.release(b.ids[s*r.strCols+col.at])
		case colStr:
			b.strs[j][s] = "" // let the string go
		case colAny:
			b.vals[j][s] = expr.Value{}
		}
	}
	r.off++
	r.n--
	r.popped++
	switch {
	case r.n == 0: // keep the oldest block only
		r.off, r.spare = 0, nil
		clear(r.blks[r.bh+1:])
		r.blks = r.blks[:r.bh+1]
	case r.off == len(b.times): // the oldest block is done
		if r.spare == nil {
			r.spare = b
		}
		r.blks[r.bh] = nil
		r.bh++
		r.off = 0
		if r.bh >= len(r.blks)/2 { // slide the blocks in use down, now and then
			k := copy(r.blks, r.blks[r.bh:])
			clear(r.blks[k:])
			r.blks, r.bh = r.blks[:k], 0
		}
	}
}

// clear drops every event, keeping one block.
func (r *ring) clear() {
	for r.n > 0 {
		r.pop()
	}
}

// row copies the i-th oldest event into dst (of the stream's width). It is get for every
// column, with the slot's parts of the block sliced once.
func (r *ring) row(i int, dst expr.Row) {
	b, s := r.at(i)
	w := len(r.cols)
	tags := b.tags[s*w : s*w+w]
	nums := b.nums[s*r.nums : s*r.nums+r.nums]
	ids := b.ids[s*r.strCols : s*r.strCols+r.strCols]
	dst = dst[:w]
	for j := range r.cols {
		col := &r.cols[j]
		t := tags[j]
		switch col.kind {
		case colNum:
			if x := nums[col.at]; t == siddhiql.TypeFloat || t == siddhiql.TypeDouble {
				dst[j] = expr.Value{T: t, F: math.Float64frombits(x)}
			} else {
				dst[j] = expr.Value{T: t, I: int64(x)}
			}
		case colID:
			dst[j] = expr.Value{T: t, S: col.dict.strs[ids[col.at]]}
		case colStr:
			dst[j] = expr.Value{T: t, S: b.strs[j][s]}
		default:
			dst[j] = b.vals[j][s]
		}
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
	t := r.time(0)
	r.pop()
	return t, row
}

// value is attribute j of the i-th oldest event.
func (r *ring) value(i, j int) expr.Value {
	b, s := r.at(i)
	return r.get(b, s, j)
}

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
		b, s := r.at(i)
		w.Varint(b.times[s])
		w.Uvarint(uint64(len(r.cols)))
		for j := range r.cols {
			r.get(b, s, j).Encode(w)
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
