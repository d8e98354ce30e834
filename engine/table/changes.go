package table

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
)

// maxTombstones bounds how many deleted keys a keyed store table remembers beyond its row
// count. Past it the table stops tracking keys and is written whole at the next flush, so
// the change set never outgrows the table by more than this, however long the store is
// away.
const maxTombstones = 4096

// tracker records which rows of a store table changed since the last flush, each with the
// log index of its last change. It is engine state: replicas that applied the same log
// hold the same tracker.
type tracker struct {
	store *StoreDef
	// at is the log index of the entry being applied (Stamp); not state.
	at uint64
	// keys are the primary keys changed (inserted, updated or deleted), keyed tables only.
	keys map[string]change
	// all: the whole table is to be written (always so for a table without a primary
	// key, and for a keyed one past maxTombstones or restored from a state without
	// tracking). allAt is the index of the latest change since; 0 while unknown (a restored
	// state, until the next entry stamps it).
	all   bool
	allAt uint64
}

// change is one changed primary key: its values, and the index of its last change.
type change struct {
	index uint64
	key   expr.Row
}

// Changes is what a flush writes of a store table.
type Changes struct {
	// Replace: Rows are the whole table, which replaces every row the SQL table holds.
	// Tables without a primary key are always written whole: their rows have no identity
	// a change could name (equal rows are indistinguishable, positions shift).
	Replace bool
	// Rows are the rows to write: the whole table in insertion order when Replace, else
	// the changed rows still present, in primary key order.
	Rows []expr.Row
	// Deleted are the primary key values (in @primaryKey order) of the rows gone since
	// the last flush, in key order; never set with Replace.
	Deleted []expr.Row
	// Index is the greatest log index among the changes.
	Index uint64
}

// Written is the outcome of writing a table's Changes to the shared store.
type Written struct {
	// Applied: the store's fence admitted the write (false: a write at the same or a
	// later log index is there already, and nothing was written).
	Applied bool
	// Rows written: inserted, and deleted rows that were present.
	Rows int
	// Skipped rows the SQL table cannot hold (a null in the primary key, a string longer
	// than its column).
	Skipped int
	// Fence is the index the store's fence held before the write.
	Fence uint64
}

// Empty reports whether there is nothing to write.
func (c *Changes) Empty() bool { return !c.Replace && len(c.Rows) == 0 && len(c.Deleted) == 0 }

// TrackStore makes t a store table laid out as sd: from now on it records its changes
// for the flush. The engine calls it once, on the fresh table.
func (t *Table) TrackStore(sd *StoreDef) {
	t.track = &tracker{store: sd}
	if t.keys != nil {
		t.track.keys = map[string]change{}
	}
}

// Store is t's store layout, or nil for a table held in memory only.
func (t *Table) Store() *StoreDef {
	if t.track == nil {
		return nil
	}
	return t.track.store
}

// Stamp tells a store table the log index of the entry about to be applied: the index its
// changes record. It also settles a whole-table write pending from a restored state.
func (t *Table) Stamp(index uint64) {
	tr := t.track
	if tr == nil {
		return
	}
	tr.at = index
	if tr.all && tr.allAt == 0 {
		tr.allAt = index
	}
}

// changed records that row r changed at the stamped index.
func (t *Table) changed(r expr.Row) {
	if t.track == nil {
		return
	}
	k := ""
	if t.keys != nil && !t.track.all {
		k = t.key(r)
	}
	t.changedKey(k, r)
}

// changedKey is changed for a row whose primary key (for a keyed table) is k.
func (t *Table) changedKey(k string, r expr.Row) {
	tr := t.track
	if tr == nil {
		return
	}
	if tr.all || tr.keys == nil {
		tr.all, tr.allAt = true, tr.at
		return
	}
	if c, ok := tr.keys[k]; ok {
		c.index = tr.at
		tr.keys[k] = c
		return
	}
	key := make(expr.Row, len(t.pk))
	for i, p := range t.pk {
		key[i] = r[p]
	}
	tr.keys[k] = change{index: tr.at, key: key}
	if len(tr.keys) > len(t.rows)+maxTombstones {
		tr.all, tr.allAt = true, tr.at
		clear(tr.keys)
	}
}

// Changes returns what changed since the last ClearChanges, copied: the caller may keep
// it after the table changes again.
func (t *Table) Changes() Changes {
	tr := t.track
	if tr == nil {
		return Changes{}
	}
	if tr.all {
		c := Changes{Replace: true, Index: tr.allAt, Rows: make([]expr.Row, len(t.rows))}
		for i, r := range t.rows {
			c.Rows[i] = slices.Clone(r)
		}
		return c
	}
	var c Changes
	for _, k := range sortedKeys(tr.keys) {
		ch := tr.keys[k]
		c.Index = max(c.Index, ch.index)
		if i, ok := t.keys[k]; ok {
			c.Rows = append(c.Rows, slices.Clone(t.rows[i]))
		} else {
			c.Deleted = append(c.Deleted, slices.Clone(ch.key))
		}
	}
	return c
}

// ClearChanges forgets the changes made at or before index (a flush wrote them) and
// returns how many it forgot. A whole-table write pending since an unknown index stays.
func (t *Table) ClearChanges(index uint64) int {
	tr := t.track
	if tr == nil {
		return 0
	}
	n := 0
	if tr.all && tr.allAt != 0 && tr.allAt <= index {
		tr.all, tr.allAt = false, 0
		n++
	}
	for k, c := range tr.keys {
		if c.index <= index {
			delete(tr.keys, k)
			n++
		}
	}
	return n
}

func sortedKeys(m map[string]change) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, strings.Compare)
	return ks
}

// encode appends the tracker after the rows: whether the whole table is pending and
// since when, then the changed keys in key order with their indexes.
func (tr *tracker) encode(w *wire.Writer) {
	w.Bool(tr.all)
	w.Uvarint(tr.allAt)
	w.Uvarint(uint64(len(tr.keys)))
	for _, k := range sortedKeys(tr.keys) {
		c := tr.keys[k]
		w.Uvarint(c.index)
		for _, v := range c.key {
			v.Encode(w)
		}
	}
}

// decodeTracker reads what encode wrote into t's tracker (or discards it for a table
// without one).
func (t *Table) decodeTracker(r *wire.Reader) error {
	all, allAt := r.Bool(), r.Uvarint()
	n := r.Count(1)
	keys := map[string]change{}
	for range n {
		c := change{index: r.Uvarint(), key: make(expr.Row, len(t.pk))}
		for i := range c.key {
			c.key[i] = expr.DecodeValue(r)
		}
		if r.Err() != nil {
			break
		}
		var b []byte
		for _, v := range c.key {
			b = v.Key(b)
		}
		keys[string(b)] = c
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%w: table %s changes: %w", ErrState, t.Name(), err)
	}
	tr := t.track
	if tr == nil {
		return nil
	}
	if len(keys) > 0 && tr.keys == nil {
		return fmt.Errorf("%w: table %s: changed keys recorded for a table without a primary key", ErrState, t.Name())
	}
	tr.all, tr.allAt = all, allAt
	if tr.keys != nil {
		tr.keys = keys
	}
	return nil
}
