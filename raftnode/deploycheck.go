package raftnode

import (
	"fmt"
	"unicode/utf8"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
)

// defChecker is a store that can tell, without touching the database, whether it can hold
// an aggregation's tables (store.Rollups.CheckDef).
type defChecker interface {
	CheckDef(def *agg.Def) error
}

// checkApp is what this node refuses before proposing a deploy, because it depends on the
// node's configuration rather than on the replicated state: http sinks the sink policy does
// not allow (ErrAppRefused), aggregations whose tables the store cannot hold (the store's
// error, which names the limit), and a shard ID longer than SHARD_ID's field.length.
func (n *Node) checkApp(app *engine.App) error {
	if err := n.checkSinks(app); err != nil {
		return err
	}
	if err := n.checkStoreTables(app); err != nil { // flushtable.go
		return err
	}
	shard := n.ShardID()
	if shard == "" {
		shard = n.cfg.ShardID
	}
	for _, def := range app.Aggregations() {
		if c, ok := n.cfg.Store.(defChecker); ok {
			if err := c.CheckDef(def); err != nil {
				return fmt.Errorf("raftnode: deploy %s: %w", app.Name, err)
			}
		}
		if n.cfg.Store != nil && def.ShardLength > 0 && utf8.RuneCountInString(shard) > def.ShardLength {
			return fmt.Errorf("%w: aggregation %s keeps SHARD_ID in %d characters (field.length), this group's shard ID %q has %d",
				ErrAppRefused, def.Name, def.ShardLength, shard, utf8.RuneCountInString(shard))
		}
	}
	return nil
}
