package engine

import (
	"fmt"
	"strings"

	"github.com/tally-db/tally/engine/expr"
)

// checkLengths refuses events with a string longer than the aggregation table column it
// feeds holds (agg.Def.CheckLengths). It runs at ingest only (CheckEvents), never in
// Apply: entries already in the log apply as they always did, whatever version wrote them.
func (s *stream) checkLengths(events []expr.Row) error {
	for _, st := range s.aggs {
		if err := st.Def().CheckLengths(events); err != nil {
			return fmt.Errorf("%w: %w", ErrBadEvent, err)
		}
	}
	return nil
}

// checkTables refuses an app with an aggregation whose store tables (<Agg>_SECONDS, …)
// another aggregation already has: one of another deployed app, or another of its own,
// whatever the letter case (SQLite and MySQL on some systems compare table names ignoring
// it, and two aggregations writing one table would overwrite each other's rows).
// Redeploying an app with the same aggregation is not a clash. Apps are compared in name
// order, so the error is the same on every replica.
func (e *Engine) checkTables(a *App) error {
	for i, n := range a.aggOrder {
		for _, m := range a.aggOrder[:i] {
			if strings.EqualFold(n, m) {
				return fmt.Errorf("%w: aggregations %s and %s of app %s would share the store tables %s_SECONDS, … (table names ignore letter case)",
					ErrConflict, m, n, a.Name, n)
			}
		}
	}
	for _, other := range e.Apps() {
		if other.Name == a.Name {
			continue
		}
		for _, m := range other.aggOrder {
			for _, n := range a.aggOrder {
				if strings.EqualFold(n, m) {
					return fmt.Errorf("%w: aggregation %s would write the store tables of aggregation %s of app %s (table names ignore letter case): rename it",
						ErrConflict, n, m, other.Name)
				}
			}
		}
	}
	return e.checkStoreTables(a) // tablestore.go
}
