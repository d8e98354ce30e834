package engine

import (
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// projection maps a subscriber's attributes to a publisher's by name, for an inMemory topic
// whose subscriber takes fewer attributes than the publisher sends: idx[i] is the position
// in the publisher's row of the subscriber's attribute i. It is nil unless the subscriber has
// fewer attributes and each is one of the publisher's, with the same name and type.
//
// Siddhi passes such events through by position, so the subscriber would read the
// publisher's values in the wrong attributes; Tally gives each attribute its own value.
func projection(pub, sub []siddhiql.Attribute) []int {
	if len(sub) >= len(pub) {
		return nil
	}
	idx := make([]int, len(sub))
	for i, a := range sub {
		j := slices.IndexFunc(pub, func(p siddhiql.Attribute) bool { return p.Name == a.Name })
		if j < 0 || pub[j].Type != a.Type {
			return nil
		}
		idx[i] = j
	}
	return idx
}

// projectRows is events as the subscriber's attributes see them (see projection); nil when
// the two do not fit.
func projectRows(pub, sub []siddhiql.Attribute, events []expr.Row) []expr.Row {
	idx := projection(pub, sub)
	if idx == nil {
		return nil
	}
	out := make([]expr.Row, len(events))
	for i, ev := range events {
		if len(ev) != len(pub) {
			return nil
		}
		row := make(expr.Row, len(idx))
		for k, j := range idx {
			row[k] = ev[j]
		}
		out[i] = row
	}
	return out
}
