package raftnode

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/fsm"
)

// TestNode_DeployRefusesShortShardColumn: an aggregation whose SHARD_ID column
// (field.length) cannot hold this group's shard ID is refused before the log; it would
// fail every flush otherwise.
func TestNode_DeployRefusesShortShardColumn(t *testing.T) {
	c := newCluster(t, 1, withStore(newMemStore(), 1_000_000))
	leader := c.waitLeader(testTimeout)
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	app := func(n string) string {
		return strings.Replace(testApp, "define aggregation", `@store(type='rdbms', field.length="SHARD_ID:`+n+`") define aggregation`, 1)
	}
	_, _, err := leader.Deploy(ctx, app("6"))
	if !errors.Is(err, ErrAppRefused) || !strings.Contains(err.Error(), `SHARD_ID in 6 characters (field.length), this group's shard ID "shard-a" has 7`) {
		t.Fatalf("SHARD_ID:6 with shard-a: err = %v", err)
	}
	deployed := false
	leader.FSM().Read(func(e fsm.View) { _, deployed = e.App("T") })
	if deployed {
		t.Error("the refused app was deployed")
	}
	if _, _, err := leader.Deploy(ctx, app("7")); err != nil {
		t.Errorf("SHARD_ID:7: %v", err)
	}
}
