package agg

import (
	"fmt"
	"unicode/utf8"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// DefaultStringLength is how many characters a string column of an aggregation's tables
// (group-by, latest value, SHARD_ID) holds when @store(field.length=...) does not say:
// Siddhi's VARCHAR(254). The engine applies it whatever the store, so that every replica
// and every store refuses the same events.
const DefaultStringLength = 254

// applyFieldLengths gives every string column its length: its @store field.length, else
// DefaultStringLength. field.length entries that name no string column are ignored, as in
// Siddhi (an app may list attributes its aggregation does not keep).
func (d *Def) applyFieldLengths(a *siddhiql.AggregationDef) {
	length := func(name string) int {
		if n := a.FieldLength(name); n > 0 {
			return n
		}
		return DefaultStringLength
	}
	for i := range d.GroupBy {
		if d.GroupBy[i].Type == siddhiql.TypeString {
			d.GroupBy[i].Length = length(d.GroupBy[i].Name)
		}
	}
	for i := range d.Latest {
		if d.Latest[i].Type == siddhiql.TypeString {
			d.Latest[i].Length = length(d.Latest[i].Name)
		}
	}
	d.ShardLength = length("SHARD_ID")
}

// CheckLengths reports the first event whose string for a group-by or latest-value column
// is longer than the column holds (Column.Length), naming the stream, the event's position,
// the attribute and the limit. Events the aggregation's filter drops never reach a table
// and are not checked. It changes nothing.
func (d *Def) CheckLengths(events []expr.Row) error {
	if !d.hasLengths() {
		return nil
	}
	for i, ev := range events {
		if d.Filter != nil && !d.Filter(ev).Truth() {
			continue
		}
		for j, c := range d.GroupBy {
			if v := ev[d.groupAttrs[j]]; c.Length > 0 && tooLong(v, c.Length) {
				return d.lengthError(i, "attribute", c.Name, v, c.Length)
			}
		}
		for j, c := range d.Latest {
			if c.Length > 0 {
				if v := d.latestExpr[j](ev); tooLong(v, c.Length) {
					return d.lengthError(i, "output", c.Name, v, c.Length)
				}
			}
		}
	}
	return nil
}

// hasLengths reports whether any group-by or latest-value column is a string.
func (d *Def) hasLengths() bool {
	for _, c := range d.GroupBy {
		if c.Length > 0 {
			return true
		}
	}
	for _, c := range d.Latest {
		if c.Length > 0 {
			return true
		}
	}
	return false
}

func tooLong(v expr.Value, limit int) bool {
	return v.T == siddhiql.TypeString && len(v.S) > limit && utf8.RuneCountInString(v.S) > limit
}

func (d *Def) lengthError(i int, what, name string, v expr.Value, limit int) error {
	return fmt.Errorf("event %d of stream %s: %s %s is %d characters long, more than the %d that aggregation %s stores (field.length of %s)",
		i, d.Stream, what, name, utf8.RuneCountInString(v.S), limit, d.Name, name)
}
