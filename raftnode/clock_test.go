package raftnode

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tally-db/tally/fsm"
)

func TestOffsetClock_SkewsAndClampsStamps(t *testing.T) {
	var clk OffsetClock
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Clock = clk.Now
		cfg.TickInterval = time.Hour // only the test's entries stamp
	})
	n := c.waitLeader(testTimeout)

	const skew = 72 * time.Hour
	if prev := clk.SetOffset(skew); prev != 0 {
		t.Errorf("first SetOffset returned %v, want 0", prev)
	}
	wall := time.Now().UnixMilli()
	ahead := n.stamp()
	if d := time.Duration(ahead-wall) * time.Millisecond; d < skew-time.Second || d > skew+5*time.Second {
		t.Fatalf("stamp with a %v offset is %v ahead of the wall clock", skew, d)
	}
	// The stamped time is what the FSM sees: the event lands in the skewed day.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, _, err := n.Deploy(ctx, testApp); err != nil {
		t.Fatal(err)
	}
	res := ingest(t, n, "p", 1, row("x", 1))
	checkDay := func(index uint64, want ...int64) {
		t.Helper()
		var day int64
		err := n.Read(ctx, Stale, index, func(e fsm.View) {
			r, err := e.Query("T", `from A within 0L, 9999999999999L per "days" select AGG_TIMESTAMP`)
			if err == nil && len(r.Rows) == 1 {
				day = r.Rows[0][0].I
			}
		})
		if err != nil || !slices.Contains(want, day) {
			t.Errorf("day bucket %d (%v), want one of %v", day, err, want)
		}
	}
	dayOf := func(ms int64) int64 { return time.UnixMilli(ms).UTC().Truncate(24 * time.Hour).UnixMilli() }
	checkDay(res.Index, dayOf(ahead), dayOf(time.Now().Add(skew).UnixMilli()))

	// Going back 72 h does not take stamps back: they hold at the last one.
	last := n.stamp()
	clk.SetOffset(-skew)
	if got := n.stamp(); got != last {
		t.Errorf("after a backward jump the stamp is %d, want it held at %d", got, last)
	}
	if got := clk.Offset(); got != -skew {
		t.Errorf("Offset() = %v", got)
	}
}
