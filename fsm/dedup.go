package fsm

import (
	"container/list"
	"fmt"
	"maps"
	"slices"

	"github.com/tally-db/tally/internal/wire"
)

// DedupWindow is how many sequence numbers below a producer's highest applied seq the dedup
// table remembers individually: seqs further below are rejected with ErrSeqTooOld.
const DedupWindow = 1024

const windowWords = DedupWindow / 64

// verdict is what the dedup table says about a (producer, seq) before it is applied.
type verdict int

const (
	fresh     verdict = iota // not seen: apply it
	duplicate                // seen: skip it, report Duplicate
	tooOld                   // below the window: reject with ErrSeqTooOld
)

// producer is one producer's anti-replay window.
type producer struct {
	id   string
	high uint64 // highest seq applied
	// seen has bit k (word k/64, bit k%64) set when seq high-1-k was applied, 0 <= k < DedupWindow.
	seen [windowWords]uint64
	// index is the log index of the producer's last applied part.
	index uint64
	// at is the engine's time (stamped Unix ms) when that part applied.
	at   int64
	elem *list.Element
}

// dedup is the replicated table that makes a retried request idempotent.
//
// Per producer it keeps an anti-replay window: the highest seq applied and a bitmap of the
// DedupWindow seqs below it, so concurrent requests of one producer may commit out of order. A seq
// already applied is a duplicate; a seq more than DedupWindow below the highest is too old. An
// unknown producer's first seq is always fresh. At most max producers are kept: adding one
// more evicts the producer whose last apply has the smallest log index, ties broken by the
// smallest id, so every replica evicts the same one, but only if that producer last applied
// more than ttl ms ago (in stamped time): a live producer is never forgotten, and a new one
// is refused instead (ErrTooManyProducers). An evicted producer is forgotten: a retry of one
// of its old requests would be applied again.
//
// Because log indexes only grow, lru is ordered by index (oldest first); producers that share
// an index sit together, and eviction picks the smallest id among the oldest group. That
// makes the choice independent of the order within a group, which a restore does not keep.
type dedup struct {
	max  int
	ttl  int64 // ms a producer stays live after its last apply
	byID map[string]*producer
	lru  *list.List // of *producer, by index ascending (so by at ascending too)
}

func newDedup(max int, ttl int64) *dedup {
	return &dedup{max: max, ttl: ttl, byID: map[string]*producer{}, lru: list.New()}
}

// known reports whether producer id is in the table.
func (d *dedup) known(id string) bool {
	_, ok := d.byID[id]
	return ok
}

// expired reports whether p last applied more than ttl before now.
func (d *dedup) expired(p *producer, now int64) bool {
	// Unsigned: the difference of two int64s with now > at always fits.
	return p.at < now && uint64(now)-uint64(p.at) > uint64(d.ttl)
}

// room reports whether n producers not yet in the table can be added at time now: there
// are free places, or enough producers at the front of the list have expired to make them.
// It changes nothing.
func (d *dedup) room(n int, now int64) bool {
	need := len(d.byID) + n - d.max
	for e := d.lru.Front(); need > 0 && e != nil; e = e.Next() {
		if !d.expired(e.Value.(*producer), now) {
			return false
		}
		need--
	}
	return need <= 0
}

// makeRoom makes a place for one new producer at time now, evicting an expired producer
// if the table is full. It reports whether there is a place, and whether it evicted.
func (d *dedup) makeRoom(now int64) (ok, evicted bool) {
	if len(d.byID) < d.max {
		return true, false
	}
	if !d.room(1, now) {
		return false, false
	}
	return true, d.evictOne()
}

// Len is the number of producers remembered.
func (d *dedup) Len() int { return len(d.byID) }

// check says whether seq of producer id may be applied. It changes nothing.
func (d *dedup) check(id string, seq uint64) verdict {
	p, ok := d.byID[id]
	if !ok || seq > p.high {
		return fresh
	}
	if seq == p.high {
		return dup()
	}
	k := p.high - seq - 1
	if k >= DedupWindow {
		return tooOld
	}
	if p.seen[k/64]&(1<<(k%64)) != 0 {
		return dup()
	}
	return fresh
}

// dup is the verdict on a seq already applied: duplicate, or fresh with the planted bug of
// bug_nodedup.go (compiled out unless built with -tags tally_bug_nodedup).
func dup() verdict {
	if bugNoDedup {
		return fresh
	}
	return duplicate
}

// low is the smallest seq of id's window that is not too old (for messages).
func (d *dedup) low(id string) uint64 {
	p, ok := d.byID[id]
	if !ok || p.high < DedupWindow {
		return 0
	}
	return p.high - DedupWindow
}

// record marks seq of producer id as applied by the entry at index, at engine time at.
// check must have said fresh, and for a new producer makeRoom must have said ok (record
// evicts the oldest producer regardless if the table is still full). index and at must
// not be smaller than any recorded before. It reports whether it evicted another producer.
func (d *dedup) record(id string, seq, index uint64, at int64) (evicted bool) {
	p, ok := d.byID[id]
	if !ok {
		if len(d.byID) >= d.max {
			evicted = d.evictOne()
		}
		p = &producer{id: id, high: seq, index: index, at: at}
		p.elem = d.lru.PushBack(p)
		d.byID[id] = p
		return evicted
	}
	switch {
	case seq > p.high:
		p.shift(seq - p.high)
		p.high = seq
	case seq < p.high:
		if k := p.high - seq - 1; k < DedupWindow { // else too old: check said no
			p.seen[k/64] |= 1 << (k % 64)
		}
	}
	p.index, p.at = index, at
	d.lru.MoveToBack(p.elem)
	return false
}

// shift moves the window up by n seqs: the old high becomes bit n-1.
func (p *producer) shift(n uint64) {
	if n > DedupWindow {
		p.seen = [windowWords]uint64{}
		return
	}
	// Shift the DedupWindow-bit number left by n, then set bit n-1.
	words, off := int(n/64), uint(n%64)
	var s [windowWords]uint64
	for i := windowWords - 1; i >= words; i-- {
		v := p.seen[i-words] << off
		if off != 0 && i-words-1 >= 0 {
			v |= p.seen[i-words-1] >> (64 - off)
		}
		s[i] = v
	}
	k := n - 1
	if k < DedupWindow {
		s[k/64] |= 1 << (k % 64)
	}
	p.seen = s
}

// evictOne drops the producer with the smallest index, ties to the smallest id.
func (d *dedup) evictOne() bool {
	front := d.lru.Front()
	if front == nil {
		return false
	}
	victim := front.Value.(*producer)
	for e := front.Next(); e != nil; e = e.Next() {
		p := e.Value.(*producer)
		if p.index != victim.index {
			break
		}
		if p.id < victim.id {
			victim = p
		}
	}
	d.lru.Remove(victim.elem)
	delete(d.byID, victim.id)
	return true
}

// encode appends the table to w, producers sorted by id (snapshot version 2: with at).
func (d *dedup) encode(w *wire.Writer) {
	w.Uvarint(uint64(len(d.byID)))
	for _, id := range slices.Sorted(maps.Keys(d.byID)) {
		p := d.byID[id]
		w.String(id)
		w.Uvarint(p.high)
		w.Uvarint(p.index)
		w.Varint(p.at)
		n := windowWords
		for n > 0 && p.seen[n-1] == 0 {
			n--
		}
		w.Uvarint(uint64(n))
		for _, x := range p.seen[:n] {
			w.Uvarint(x)
		}
	}
}

// decodeDedup reads a table written by encode. Snapshot version 1 carries no times: its
// producers count as applied at legacyAt (the restored engine's time), so none of them
// expires before a full ttl has passed. A table with more than max producers (the limit was
// lowered) is cut down by the eviction rule, live or not.
func decodeDedup(r *wire.Reader, max int, ttl int64, version byte, legacyAt int64) (*dedup, error) {
	d := newDedup(max, ttl)
	n := r.Count(4) // id, high, index, word count
	ps := make([]*producer, 0, n)
	prev := ""
	for i := range n {
		p := &producer{id: r.String(), high: r.Uvarint(), index: r.Uvarint(), at: legacyAt}
		if version >= 2 {
			p.at = r.Varint()
		}
		words := r.Uvarint()
		if r.Err() != nil {
			break
		}
		if words > windowWords {
			return nil, fmt.Errorf("dedup producer %q: %d bitmap words, at most %d", p.id, words, windowWords)
		}
		for j := range words {
			p.seen[j] = r.Uvarint()
		}
		if i > 0 && p.id <= prev {
			return nil, fmt.Errorf("dedup producers not sorted: %q after %q", p.id, prev)
		}
		prev = p.id
		ps = append(ps, p)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(ps, func(a, b *producer) int {
		if a.index != b.index {
			if a.index < b.index {
				return -1
			}
			return 1
		}
		return 0 // already by id
	})
	for _, p := range ps {
		p.elem = d.lru.PushBack(p)
		d.byID[p.id] = p
	}
	for len(d.byID) > d.max {
		d.evictOne()
	}
	return d, nil
}
