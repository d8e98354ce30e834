package raftnode

import (
	"context"
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
// node's configuration rather than on the replicated state (CheckApp), for this group's
// shard ID.
func (n *Node) checkApp(app *engine.App) error {
	shard := n.ShardID()
	if shard == "" {
		shard = n.cfg.ShardID
	}
	return CheckApp(n.cfg, shard, app)
}

// CheckApp is what a replica configured with cfg, of the group with shard ID shard, refuses
// before proposing a deploy: http sinks the sink policy does not allow (ErrAppRefused),
// aggregations whose tables the store cannot hold (the store's error, which names the
// limit), and a shard ID longer than SHARD_ID's field.length. It changes nothing; a cluster
// runs it for every group before it records an app in its map.
func CheckApp(cfg Config, shard string, app *engine.App) error {
	n := &Node{cfg: cfg} // checkSinks and checkStoreTables read only the configuration
	if err := n.checkSinks(app); err != nil {
		return err
	}
	if err := n.checkStoreTables(app); err != nil { // flushtable.go
		return err
	}
	for _, def := range app.Aggregations() {
		if c, ok := cfg.Store.(defChecker); ok {
			if err := c.CheckDef(def); err != nil {
				return fmt.Errorf("raftnode: deploy %s: %w", app.Name, err)
			}
		}
		if cfg.Store != nil && def.ShardLength > 0 && utf8.RuneCountInString(shard) > def.ShardLength {
			return fmt.Errorf("%w: aggregation %s keeps SHARD_ID in %d characters (field.length), this group's shard ID %q has %d",
				ErrAppRefused, def.Name, def.ShardLength, shard, utf8.RuneCountInString(shard))
		}
	}
	return nil
}

// PrepareStore creates, with a shared store in cfg, the tables of app's aggregations and
// mirrored tables (nothing without one), so that an existing SQL table Tally cannot write
// refuses the deploy (ErrStoreTables, with the reason) instead of failing every flush after
// it. Every table it creates is one the app needs: a retried deploy finds them.
func PrepareStore(ctx context.Context, cfg Config, app *engine.App) error {
	if cfg.Store == nil {
		return nil
	}
	for _, def := range app.Aggregations() {
		if err := cfg.Store.Ensure(ctx, def); err != nil {
			return fmt.Errorf("%w: %w", ErrStoreTables, err)
		}
	}
	return (&Node{cfg: cfg}).ensureStoreTables(ctx, app) // flushtable.go
}
