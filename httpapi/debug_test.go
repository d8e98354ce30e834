package httpapi

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/raftnode"
)

// slowHashGroup takes 30 ms per state hash (as if encoding a large state under the FSM
// lock) and applies an entry before each, so every hash would be a new one.
type slowHashGroup struct {
	leaderless
	applied atomic.Uint64
	calls   atomic.Int64
	busy    atomic.Int64 // ns spent hashing
}

func (g *slowHashGroup) Status() raftnode.Status {
	return raftnode.Status{Role: "leader", AppliedIndex: g.applied.Load()}
}

func (g *slowHashGroup) StateHash() (uint64, string, error) {
	g.calls.Add(1)
	start := time.Now()
	time.Sleep(30 * time.Millisecond)
	g.busy.Add(int64(time.Since(start)))
	return g.applied.Add(1), "h", nil
}

// TestDebugStateBounded: however often /v1/debug/state is called, state hashes hold the
// FSM for a bounded share of the time, and concurrent callers share one.
func TestDebugStateBounded(t *testing.T) {
	g := &slowHashGroup{}
	srv := httptest.NewServer(New(Config{}, []Group{g}, nil, raftnode.NewResolver()))
	defer srv.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for time.Since(start) < 700*time.Millisecond {
				if r := do(t, http.MethodGet, srv.URL+"/v1/debug/state", ""); r.code != 200 {
					t.Errorf("debug/state: %d %s", r.code, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	busy := time.Duration(g.busy.Load())
	if share := float64(busy) / float64(elapsed); share > 0.2 || g.calls.Load() > 4 {
		t.Errorf("%d hashes took %s of %s (%.0f%%), want at most about 1/%d of the time", g.calls.Load(), busy, elapsed, 100*share, stateHashDuty)
	}
	if g.calls.Load() == 0 {
		t.Error("no hash computed")
	}
	// Past the pause a new index gets a new hash; an unchanged one gets the cached hash.
	time.Sleep(stateHashDuty * 40 * time.Millisecond)
	g.applied.Add(1)
	before := g.calls.Load()
	if r := do(t, http.MethodGet, srv.URL+"/v1/debug/state", ""); r.code != 200 || g.calls.Load() != before+1 {
		t.Errorf("after the pause: %d calls, want one more", g.calls.Load()-before)
	}
	if r := do(t, http.MethodGet, srv.URL+"/v1/debug/state", ""); r.code != 200 || g.calls.Load() != before+1 {
		t.Errorf("at an unchanged index: %d calls, want none more", g.calls.Load()-before-1)
	}
}
