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

// storeNames are the SQL tables the app writes: its store tables' and its aggregations'
// (<Agg>_SECONDS, …), each with what owns it, for conflict messages.
func (a *App) storeNames() [][2]string {
	var out [][2]string
	for _, t := range a.storeTables {
		out = append(out, [2]string{t.Store().Table, "table " + t.Name()})
	}
	for _, def := range a.Aggregations() {
		for _, d := range def.Durations {
			out = append(out, [2]string{def.Name + "_" + d.String(), "aggregation " + def.Name})
		}
	}
	return out
}

// checkStoreTables refuses an app with a store table whose SQL table (ignoring letter
// case, as some databases do) another store table or an aggregation table already has,
// in this app or another deployed one, or which is the store's fence table. Two writers
// of one SQL table would overwrite each other's rows. Apps are compared in name order, so
// the error is the same on every replica.
func (e *Engine) checkStoreTables(a *App) error {
	mine := a.storeNames()
	for _, t := range a.storeTables {
		if strings.EqualFold(t.Store().Table, FenceTable) {
			return fmt.Errorf("%w: table %s: %s is the store's own table of fences: rename the table or set another table.name", ErrConflict, t.Name(), FenceTable)
		}
	}
	for i, n := range mine {
		for _, m := range mine[:i] {
			if strings.EqualFold(n[0], m[0]) && n[1] != m[1] {
				return fmt.Errorf("%w: %s and %s of app %s would both write the SQL table %s (table names ignore letter case)",
					ErrConflict, m[1], n[1], a.Name, n[0])
			}
		}
	}
	for _, other := range e.Apps() {
		if other.Name == a.Name {
			continue
		}
		for _, m := range other.storeNames() {
			for _, n := range mine {
				if strings.EqualFold(n[0], m[0]) {
					return fmt.Errorf("%w: %s would write the SQL table %s of %s of app %s (table names ignore letter case): rename it",
						ErrConflict, n[1], m[0], m[1], other.Name)
				}
			}
		}
	}
	return nil
}
