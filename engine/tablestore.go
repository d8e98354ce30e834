package engine

import (
	"fmt"
	"strings"

	"github.com/tally-db/tally/engine/table"
)

// FenceTable is the store's table of table fences (store package); no app's table may
// take its name.
const FenceTable = "TALLY_TABLE_FENCE"

// StoreTables lists the app's `@store(type='rdbms')` tables in text order: the tables the
// leader mirrors to the shared store.
func (a *App) StoreTables() []*table.Table {
	var out []*table.Table
	for _, n := range a.tableOrder {
		if t := a.tables[n]; t.Store() != nil {
			out = append(out, t)
		}
	}
	return out
}

// stampTables tells every store table the log index of the entry being applied, the index
// its changes record. The order apps are visited in does not matter: each table only
// records the index.
func (e *Engine) stampTables(index uint64) {
	for _, a := range e.apps {
		for _, t := range a.storeTables {
			t.Stamp(index)
		}
	}
}

// clearTableChanges forgets, in every store table of the app, the changes made at or
// before index: a flush wrote them.
func (a *App) clearTableChanges(index uint64) {
	for _, t := range a.storeTables {
		t.ClearChanges(index)
	}
}

// aggTables are the SQL tables the app's aggregations write (<Agg>_SECONDS, …), each with
// its owner, for conflict messages.
func (a *App) aggTables() [][2]string {
	var out [][2]string
	for _, def := range a.Aggregations() {
		for _, d := range def.Durations {
			out = append(out, [2]string{def.Name + "_" + d.String(), "aggregation " + def.Name})
		}
	}
	return out
}

// checkStoreTables refuses an app with a store table whose SQL table (ignoring letter
// case, as some databases do) an aggregation of any deployed app writes, which another
// store table of this app writes, or which is the store's fence table; and one whose SQL
// table another deployed app's store table lays out differently. Several apps may define
// one SQL table with the same layout, as Siddhi apps sharing a database table do. Apps are
// compared in name order, so the error is the same on every replica.
func (e *Engine) checkStoreTables(a *App) error {
	mine := a.aggTables()
	for i, t := range a.storeTables {
		sd := t.Store()
		if strings.EqualFold(sd.Table, FenceTable) {
			return fmt.Errorf("%w: table %s: %s is the store's own table of fences: rename the table or set another table.name", ErrConflict, t.Name(), FenceTable)
		}
		for _, o := range a.storeTables[:i] {
			if strings.EqualFold(o.Store().Table, sd.Table) {
				return fmt.Errorf("%w: tables %s and %s of app %s would both write the SQL table %s (table names ignore letter case)",
					ErrConflict, o.Name(), t.Name(), a.Name, sd.Table)
			}
		}
		if err := aggClash(t, mine, a.Name); err != nil {
			return err
		}
	}
	for _, other := range e.Apps() {
		if other.Name == a.Name {
			continue
		}
		for _, t := range a.storeTables {
			if err := aggClash(t, other.aggTables(), other.Name); err != nil {
				return err
			}
			for _, ot := range other.storeTables {
				if osd := ot.Store(); strings.EqualFold(osd.Table, t.Store().Table) && !osd.SameLayout(t.Store()) {
					return fmt.Errorf("%w: table %s lays out the SQL table %s otherwise than table %s of app %s does (columns, types, field.length, @primaryKey and @index must match to share it)",
						ErrConflict, t.Name(), t.Store().Table, ot.Name(), other.Name)
				}
			}
		}
		for _, n := range mine {
			for _, ot := range other.storeTables {
				if strings.EqualFold(n[0], ot.Store().Table) {
					return fmt.Errorf("%w: %s would write the SQL table %s of table %s of app %s (table names ignore letter case): rename it",
						ErrConflict, n[1], n[0], ot.Name(), other.Name)
				}
			}
		}
	}
	return nil
}

// aggClash refuses store table t when one of the aggregation tables aggs (of app) has its
// SQL table's name.
func aggClash(t *table.Table, aggs [][2]string, app string) error {
	for _, m := range aggs {
		if strings.EqualFold(t.Store().Table, m[0]) {
			return fmt.Errorf("%w: table %s would write the SQL table %s of %s of app %s (table names ignore letter case): rename it or set another table.name",
				ErrConflict, t.Name(), m[0], m[1], app)
		}
	}
	return nil
}
