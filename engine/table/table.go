// Package table is Tally's in-memory SiddhiQL table: rows in insertion order, an optional
// primary key, and the condition scopes that queries use to read and change it.
//
// A table is engine state, changed only by Apply (query outputs, on-demand writes), so its
// contents are the same on every replica. With a primary key, inserting a row whose key is
// already present drops the new row, as Siddhi's in-memory table does. Rows keep insertion
// order: joins, `in` and on-demand reads see them in that order, and the encoding writes
// them in that order.
//
// A `@store(type='rdbms')` table (ParseStore, TrackStore) also records, as state, which
// rows changed since the last flush to the shared store (changes.go).
package table

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// stateVersion is the first byte of an encoded table: 1 for a table held in memory only,
// trackedVersion for a store table, whose change tracker follows its rows. A store table
// restored from version 1 (written before tables were mirrored) is written whole at the
// next flush.
const (
	stateVersion   = 1
	trackedVersion = 2
)

// ErrState is returned (wrapped) by Decode for a state that does not fit the table.
var ErrState = errors.New("table: bad state")

// Table is one table's definition and rows. It is not safe for concurrent use.
type Table struct {
	Def *siddhiql.TableDef
	pk  []int // attribute positions of the primary key; empty without one
	// rows in insertion order.
	rows []expr.Row
	// keys maps a primary key to its row's position; nil without a primary key.
	keys map[string]int
	// track records changes for the flush; nil for a table held in memory only
	// (changes.go).
	track *tracker
}

// New returns an empty table for def.
func New(def *siddhiql.TableDef) *Table {
	t := &Table{Def: def}
	for _, k := range def.PrimaryKey {
		for i, a := range def.Attributes {
			if a.Name == k {
				t.pk = append(t.pk, i)
			}
		}
	}
	if len(t.pk) > 0 {
		t.keys = map[string]int{}
	}
	return t
}

// Name is the table's name.
func (t *Table) Name() string { return t.Def.Name }

// Attrs are the table's attributes in definition order.
func (t *Table) Attrs() []siddhiql.Attribute { return t.Def.Attributes }

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Rows returns the rows in insertion order. The caller must not modify them.
func (t *Table) Rows() []expr.Row { return t.rows }

func (t *Table) key(row expr.Row) string {
	var b []byte
	for _, i := range t.pk {
		b = row[i].Key(b)
	}
	return string(b)
}

// Insert appends a copy of row. With a primary key, a row whose key is already present is
// dropped and Insert reports false.
func (t *Table) Insert(row expr.Row) bool {
	row = slices.Clone(row)
	k := ""
	if t.keys != nil {
		k = t.key(row)
		if _, dup := t.keys[k]; dup {
			return false
		}
		t.keys[k] = len(t.rows)
	}
	t.rows = append(t.rows, row)
	t.changedKey(k, row)
	return true
}

// Delete removes every row for which match is true and returns how many it removed.
func (t *Table) Delete(match func(expr.Row) bool) int {
	kept := t.rows[:0]
	n := 0
	for _, r := range t.rows {
		if match(r) {
			n++
			t.changed(r)
			continue
		}
		kept = append(kept, r)
	}
	clear(t.rows[len(kept):])
	t.rows = kept
	if n > 0 {
		t.reindex()
	}
	return n
}

// Update replaces every row for which match is true with set(row) and returns how many it
// changed. A change that would give a row the primary key of another row is dropped (the
// row keeps its old values), so keys stay unique.
func (t *Table) Update(match func(expr.Row) bool, set func(expr.Row) expr.Row) int {
	n := 0
	for i, r := range t.rows {
		if match(r) && t.UpdateAt(i, set) {
			n++
		}
	}
	return n
}

func (t *Table) reindex() {
	if t.keys == nil {
		return
	}
	clear(t.keys)
	for i, r := range t.rows {
		t.keys[t.key(r)] = i
	}
}

// Encode appends the table's rows to w, in insertion order.
func (t *Table) Encode(w *wire.Writer) {
	if t.track == nil {
		w.Byte(stateVersion)
	} else {
		w.Byte(trackedVersion)
	}
	w.Uvarint(uint64(len(t.rows)))
	for _, r := range t.rows {
		for _, v := range r {
			v.Encode(w)
		}
	}
	if t.track != nil {
		t.track.encode(w)
	}
}

// Decode replaces the rows with those written by Encode of a table of the same definition.
func (t *Table) Decode(r *wire.Reader) error {
	v := r.Byte()
	if r.Err() == nil && v != stateVersion && v != trackedVersion {
		return fmt.Errorf("%w: table %s: version %d, want %d or %d", ErrState, t.Name(), v, stateVersion, trackedVersion)
	}
	n := r.Count(1)
	width := len(t.Def.Attributes)
	rows := make([]expr.Row, 0, n)
	for range n {
		row := make(expr.Row, width)
		for j := range row {
			row[j] = expr.DecodeValue(r)
		}
		if r.Err() != nil {
			break
		}
		rows = append(rows, row)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%w: table %s: %w", ErrState, t.Name(), err)
	}
	if v == trackedVersion {
		if err := t.decodeTracker(r); err != nil {
			return err
		}
	} else if t.track != nil {
		// Written before the table was mirrored: what the store holds is unknown.
		t.track.all, t.track.allAt = len(rows) > 0, 0
		if t.track.keys != nil {
			clear(t.track.keys)
		}
	}
	t.rows = rows
	if t.keys != nil {
		t.keys = map[string]int{}
		t.reindex()
		if len(t.keys) != len(t.rows) {
			return fmt.Errorf("%w: table %s: duplicate primary keys", ErrState, t.Name())
		}
	}
	return nil
}

// Row returns the row at position i (as Keyed.Match gives it). The caller must not modify it.
func (t *Table) Row(i int) expr.Row { return t.rows[i] }

// UpdateAt replaces the row at position i with set(row), unless that would give it the
// primary key of another row; it reports whether it changed the row.
func (t *Table) UpdateAt(i int, set func(expr.Row) expr.Row) bool {
	r := t.rows[i]
	nr := set(r)
	var ok, nk string
	if t.keys != nil {
		ok, nk = t.key(r), t.key(nr)
		if nk != ok {
			if _, taken := t.keys[nk]; taken {
				return false
			}
			delete(t.keys, ok)
			t.keys[nk] = i
		}
	}
	t.rows[i] = nr
	if nk != ok {
		t.changedKey(ok, r) // the old key is gone
	}
	t.changedKey(nk, nr)
	return true
}

// DeleteAt removes the row at position i.
func (t *Table) DeleteAt(i int) {
	t.changed(t.rows[i])
	t.rows = slices.Delete(t.rows, i, i+1)
	t.reindex()
}
