package raftnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/fsm"
)

// TestCommit_LingerOnlyWhileInFlight: with a long Linger, a request that finds nothing in
// flight is proposed at once, and concurrent requests are gathered into fewer entries while
// one is in flight, the lingering ending when that entry applies rather than when Linger
// runs out.
func TestCommit_LingerOnlyWhileInFlight(t *testing.T) {
	const linger = 4 * time.Second
	c := newCluster(t, 3, func(cfg *Config) { cfg.Linger = linger })
	c.deploy()
	leader := c.waitLeader(testTimeout)

	for i := range 3 {
		start := time.Now()
		ingest(t, leader, "solo", uint64(i+1), row("a", 1))
		if d := time.Since(start); d > linger/4 {
			t.Fatalf("a lone request took %s: it lingered with nothing in flight", d)
		}
	}

	const clients = 32
	indexes := make([]uint64, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			res, err := leader.Ingest(ctx, []fsm.Part{part(fmt.Sprint("c", g), 1, row("b", int64(g)))})
			if err != nil {
				t.Errorf("client %d: %v", g, err)
				return
			}
			indexes[g] = res.Index
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if d := time.Since(start); d > linger/2 {
		t.Fatalf("%d concurrent requests took %s: the committer lingered after the entry in flight applied", clients, d)
	}
	entries := map[uint64]bool{}
	for _, idx := range indexes {
		entries[idx] = true
	}
	if len(entries) >= clients {
		t.Fatalf("%d concurrent requests went into %d entries: none were gathered", clients, len(entries))
	}
	t.Logf("%d concurrent requests in %d entries", clients, len(entries))
}
