package window

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

type aggFn uint8

const (
	aggCount aggFn = iota
	aggSum
	aggAvg
	aggMin
	aggMax
	aggDistinct
)

// aggSpec is one aggregate call of the select list or having.
type aggSpec struct {
	fn      aggFn
	arg     expr.Eval // nil for count()
	argType siddhiql.Type
	res     siddhiql.Type
}

// valCount is one distinct value of a multiset with its multiplicity.
type valCount struct {
	v expr.Value
	n int64
}

// aggState is the running state of one aggregate for one group key. Only the fields
// its function uses are set.
type aggState struct {
	n    int64   // non-null values added minus removed (events, for count())
	sumI int64   // sum of int/long values
	sumF float64 // sum of float/double values
	// set holds min/max values sorted by cmpValue, or distinctCount values sorted by key.
	set []valCount
}

// group is the aggregate state of one group key.
type group struct {
	key    string // the group-by key, "" without group by
	events int64  // events added minus removed; the group is dropped at zero
	aggs   []aggState
}

// cmpValue orders numbers as Java's Double.compare and Long.compare do (NaN last).
func cmpValue(a, b expr.Value) int {
	if a.IsFloat() || b.IsFloat() {
		x, y := a.AsFloat(), b.AsFloat()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		case x == y:
			return 0
		case math.IsNaN(x) && math.IsNaN(y):
			return 0
		case math.IsNaN(x):
			return 1
		}
		return -1
	}
	switch {
	case a.I < b.I:
		return -1
	case a.I > b.I:
		return 1
	}
	return 0
}

func keyCmp(a, b expr.Value) int {
	ka, kb := a.Key(nil), b.Key(nil)
	return slices.Compare(ka, kb)
}

func (s *aggState) setFind(v expr.Value, cmp func(a, b expr.Value) int) (int, bool) {
	i := sort.Search(len(s.set), func(i int) bool { return cmp(s.set[i].v, v) >= 0 })
	return i, i < len(s.set) && cmp(s.set[i].v, v) == 0
}

func (s *aggState) setAdd(v expr.Value, cmp func(a, b expr.Value) int) {
	i, found := s.setFind(v, cmp)
	if found {
		s.set[i].n++
		return
	}
	s.set = slices.Insert(s.set, i, valCount{v: v, n: 1})
}

func (s *aggState) setRemove(v expr.Value, cmp func(a, b expr.Value) int) {
	i, found := s.setFind(v, cmp)
	if !found {
		return
	}
	if s.set[i].n--; s.set[i].n == 0 {
		s.set = slices.Delete(s.set, i, i+1)
	}
}

func (sp *aggSpec) cmp() func(a, b expr.Value) int {
	if sp.fn == aggDistinct {
		return keyCmp
	}
	return cmpValue
}

// update adds (sign +1) or removes (sign -1) one event's contribution.
func (sp *aggSpec) update(s *aggState, row expr.Row, sign int64) {
	if sp.fn == aggCount {
		s.n += sign
		return
	}
	v := sp.arg(row)
	if v.IsNull() {
		return
	}
	s.n += sign
	switch sp.fn {
	case aggSum, aggAvg:
		if v.IsFloat() {
			s.sumF += float64(sign) * v.F
		} else {
			s.sumI += sign * v.I
		}
	case aggMin, aggMax, aggDistinct:
		if sign > 0 {
			s.setAdd(v, sp.cmp())
		} else {
			s.setRemove(v, sp.cmp())
		}
	}
}

// value is the aggregate's current result.
func (sp *aggSpec) value(s *aggState) expr.Value {
	switch sp.fn {
	case aggCount:
		return expr.Long(s.n)
	case aggDistinct:
		return expr.Long(int64(len(s.set)))
	}
	if s.n <= 0 {
		return expr.Null
	}
	float := sp.argType == siddhiql.TypeFloat || sp.argType == siddhiql.TypeDouble
	switch sp.fn {
	case aggSum:
		if float {
			return expr.Double(s.sumF)
		}
		return expr.Long(s.sumI)
	case aggAvg:
		if float {
			return expr.Double(s.sumF / float64(s.n))
		}
		return expr.Double(float64(s.sumI) / float64(s.n))
	case aggMin:
		if len(s.set) == 0 {
			return expr.Null
		}
		return s.set[0].v
	default: // aggMax
		if len(s.set) == 0 {
			return expr.Null
		}
		return s.set[len(s.set)-1].v
	}
}

func (s *aggState) encode(w *wire.Writer) {
	w.Varint(s.n)
	w.Varint(s.sumI)
	w.Float(s.sumF)
	w.Uvarint(uint64(len(s.set)))
	for _, e := range s.set {
		e.v.Encode(w)
		w.Varint(e.n)
	}
}

func (s *aggState) decode(r *wire.Reader) {
	s.n = r.Varint()
	s.sumI = r.Varint()
	s.sumF = r.Float()
	n := r.Count(2)
	s.set = nil
	for range n {
		v := expr.DecodeValue(r)
		c := r.Varint()
		if r.Err() == nil && c <= 0 {
			r.Fail(fmt.Errorf("window: bad multiset count %d", c))
		}
		s.set = append(s.set, valCount{v: v, n: c})
	}
}
