package raftnode

import (
	"context"
	"fmt"

	"github.com/tally-db/tally/engine"
	etable "github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/fsm"
)

// capturedTable is one mirrored table's changes as one flush writes them.
type capturedTable struct {
	app     string
	sd      *etable.StoreDef
	name    string
	changes etable.Changes
}

// captureTables copies, under the FSM read lock, the changes of every
// `@store(type='rdbms')` table since the last flush (a round's first chunk writes them). Unlike aggregation rows they are not
// selected by index: a table forgets its changes only when KindFlushed covers them.
func (c *capture) captureTables(e fsm.View) {
	for _, a := range e.Apps() {
		for _, t := range a.StoreTables() {
			ch := t.Changes()
			if ch.Empty() {
				continue
			}
			c.tables = append(c.tables, capturedTable{app: a.Name(), sd: t.Store(), name: t.Name(), changes: ch})
		}
	}
}

// flushTables writes the captured tables' changes to the store, each in one transaction
// fenced by the capture's index, and reports whether any write was admitted. A table the
// store cannot write (an incompatible existing table, a failing database) fails the flush,
// so its changes stay until a flush writes them; a write the fence turned away (a later
// one is there already: this leader has not applied as far as the last writer yet) is
// not an error.
func (n *Node) flushTables(ctx context.Context, c capture) (bool, error) {
	ts, ok := n.cfg.Store.(TableStore)
	if !ok || len(c.tables) == 0 {
		return false, nil
	}
	if n.flush.tablesEnsured == nil {
		n.flush.tablesEnsured = map[*etable.StoreDef]bool{}
	}
	applied := false
	for _, ct := range c.tables {
		if !n.flush.tablesEnsured[ct.sd] {
			if err := ts.EnsureTable(ctx, ct.sd); err != nil {
				return applied, fmt.Errorf("prepare table %s of app %s: %w", ct.name, ct.app, err)
			}
			n.flush.tablesEnsured[ct.sd] = true
		}
		w, err := ts.WriteTable(ctx, ct.sd, c.shard, c.index, &ct.changes)
		if err != nil {
			return applied, fmt.Errorf("write table %s of app %s: %w", ct.name, ct.app, err)
		}
		if w.Skipped > 0 {
			n.logger.Warn("table rows the SQL table cannot hold (a null in the primary key, a string longer than its field.length, a NaN or infinite number) were not written",
				"app", ct.app, "table", ct.name, "rows", w.Skipped)
		}
		if !w.Applied {
			if last := n.raft.LastIndex(); w.Fence > last {
				// No leader of this group wrote that: the fence is past its whole log.
				return applied, fmt.Errorf("%w: table %s of app %s: the store's fence (%s) is at index %d, past this group's log (last index %d): "+
					"another cluster wrote this database under shard ID %q; give this one another --shard-id, or delete the fence rows of that shard if the old rows may be overwritten",
					ErrStoreTables, ct.name, ct.app, "TALLY_TABLE_FENCE", w.Fence, last, c.shard)
			}
			n.logger.Debug("table write turned away by the fence: the store holds a later one", "table", ct.name, "index", c.index, "fence", w.Fence)
			continue
		}
		applied = true
		n.metrics.flushRows.Add(uint64(w.Rows))
	}
	return applied, nil
}

// ensureStoreTables prepares, before a deploy is proposed, the app's mirrored tables in the
// shared store, so that an existing SQL table Tally cannot write refuses the deploy with
// the reason instead of failing every flush after it.
func (n *Node) ensureStoreTables(ctx context.Context, app *engine.App) error {
	ts, ok := n.cfg.Store.(TableStore)
	if !ok {
		return nil
	}
	for _, t := range app.StoreTables() {
		if err := ts.EnsureTable(ctx, t.Store()); err != nil {
			return fmt.Errorf("%w: table %s: %w", ErrStoreTables, t.Name(), err)
		}
	}
	return nil
}

// tableChecker is a store that can tell, without touching the database, whether it can
// hold a mirrored table (store.Tables.CheckTable).
type tableChecker interface {
	CheckTable(sd *etable.StoreDef) error
}

// checkStoreTables refuses an app with a mirrored table the store cannot hold (names, key
// and row sizes), naming the limit.
func (n *Node) checkStoreTables(app *engine.App) error {
	c, ok := n.cfg.Store.(tableChecker)
	if !ok {
		return nil
	}
	for _, t := range app.StoreTables() {
		if err := c.CheckTable(t.Store()); err != nil {
			return fmt.Errorf("raftnode: deploy %s: %w", app.Name, err)
		}
	}
	return nil
}

// FlushError is why the last flush to the shared store failed, while flushes fail on this
// leader (an unreachable database, a table it cannot write); nil otherwise.
func (n *Node) FlushError() error {
	if !n.flush.failing.Load() {
		return nil
	}
	n.flush.mu.Lock()
	defer n.flush.mu.Unlock()
	return n.flush.lastErr
}
