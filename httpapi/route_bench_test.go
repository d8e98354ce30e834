package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/raftnode"
)

// partitionedApp is the trade app with its stream partitioned by symbol.
const partitionedApp = `@app:name('TradeApp')
@distribution(strategy='partitioned', partitionKey='symbol')
define stream TradeStream (symbol string, price double, quantity long, timestamp long);
define aggregation TradeAggregation
  from TradeStream
  select symbol, avg(price) as avgPrice, sum(quantity) as total
  group by symbol
  aggregate by timestamp every sec ... year;
`

// localGroups starts n one-voter groups in-process, each leading itself, with the
// partitioned trade app, and the API over them.
func localGroups(tb testing.TB, n int) *Server {
	tb.Helper()
	groups := make([]Group, n)
	for g := range n {
		_, trans := raft.NewInmemTransport("")
		nc := raftnode.DefaultConfig()
		nc.ID, nc.DataDir, nc.Bootstrap, nc.Group, nc.ShardID = "n1", tb.TempDir(), true, uint32(g), fmt.Sprintf("shard-%d", g)
		nc.HeartbeatTimeout, nc.ElectionTimeout, nc.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
		nc.Logger = slog.New(slog.DiscardHandler)
		nd, err := raftnode.Open(nc, trans)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = nd.Close(context.Background()) })
		deadline := time.Now().Add(10 * time.Second)
		for !nd.IsLeader() {
			if time.Now().After(deadline) {
				tb.Fatal("no leader")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, _, err := nd.Deploy(tb.Context(), partitionedApp); err != nil {
			tb.Fatal(err)
		}
		groups[g] = nd
	}
	return New(Config{NodeID: "n1", Logger: slog.New(slog.DiscardHandler)}, groups, nil, raftnode.NewResolver())
}

// tradeBody is n events of n symbols, NDJSON.
func tradeBody(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"symbol":"s%d","price":1.5,"quantity":1,"timestamp":1514783400000}`+"\n", i)
	}
	return b.String()
}

// TestIngestSplitLocal: a request over three groups this node leads commits every group's
// part and answers with each.
func TestIngestSplitLocal(t *testing.T) {
	s := localGroups(t, 3)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/streams/TradeStream/events", strings.NewReader(tradeBody(30))))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"events":30`) || strings.Count(w.Body.String(), `"status":200`) != 3 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// BenchmarkIngestSplit: one ingest request of 30 events through handleIngest, on one group
// and split over three groups this node leads, from concurrent clients. Splitting should
// cost little more than the Raft entries it adds.
func BenchmarkIngestSplit(b *testing.B) {
	body := tradeBody(30)
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			s := localGroups(b, n)
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := httptest.NewRecorder()
					s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/streams/TradeStream/events", strings.NewReader(body)))
					if w.Code != 200 {
						b.Errorf("%d %s", w.Code, w.Body)
						return
					}
				}
			})
		})
	}
}
