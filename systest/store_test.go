package systest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/tally-db/tally/internal/mariadbtest"
)

// openSQL opens the test database behind a store DSN (mysql://...), as an external SQL
// reader would.
func openSQL(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// shardTotals reads SHARD_ID → SUM(AGG_SUM_quantity) from an HOURS table.
func shardTotals(ctx context.Context, db *sql.DB) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT SHARD_ID, SUM(AGG_SUM_quantity) FROM TradeAggregation_HOURS GROUP BY SHARD_ID")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var shard string
		var sum int64
		if err := rows.Scan(&shard, &sum); err != nil {
			return nil, err
		}
		out[shard] = sum
	}
	return out, rows.Err()
}

// seedQuery is the WSO2 active-active example's query.
const seedQuery = `from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice`

func storeQuery(c *cluster, nd *node, consistency string) (string, error) {
	body := fmt.Sprintf(`{"appName":"TradeApp","query":%q}`, seedQuery)
	resp, err := c.http.Post("http://"+nd.httpAddr+"/stores/query?consistency="+consistency, "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

func tradeAt(symbol string, qty, ts int64) string {
	return fmt.Sprintf(`{"symbol":%q,"price":100.0,"quantity":%d,"timestamp":%d}`, symbol, qty, ts)
}

// TestStore_SeedActiveActive is the WSO2 active-active example against MariaDB: two
// single-node clusters with their own shard IDs share one database; after a flush the HOURS
// table holds 30 and 40 and either cluster answers 70, from memory and store or the store
// alone.
func TestStore_SeedActiveActive(t *testing.T) {
	dsn, _ := mariadbtest.Start(t)
	a := newCluster(t, 1, "--shard-id", "wso2-si-1", "--store-dsn", dsn)
	b := newCluster(t, 1, "--shard-id", "wso2-si-2", "--store-dsn", dsn)
	for _, step := range []struct {
		c   *cluster
		qty int64
		ts  int64
	}{{a, 10, 1514783400000}, {a, 20, 1514784000000}, {b, 10, 1514783400000}, {b, 30, 1514786399000}} {
		res, err := step.c.ingest(t.Context(), step.c.nodes[0], "", 0, tradeAt("wso2", step.qty, step.ts))
		if err != nil || res.code != 200 {
			t.Fatalf("ingest: %v %+v", err, res)
		}
	}
	db := openSQL(t, dsn)
	want := map[string]int64{"wso2-si-1": 30, "wso2-si-2": 40}
	a.eventually(15*time.Second, "both shards' rows in TradeAggregation_HOURS", func() bool {
		got, err := shardTotals(t.Context(), db)
		return err == nil && reflect.DeepEqual(got, want)
	})
	const answer = `{"records":[[1514782800000,"wso2",70,100.0]]}`
	for _, c := range []*cluster{a, b} {
		for _, consistency := range []string{"linearizable", "stale", "stored"} {
			if got, err := storeQuery(c, c.nodes[0], consistency); err != nil || got != answer {
				t.Errorf("%s consistency=%s: %s, %v; want %s", c.nodes[0].args[2], consistency, got, err, answer)
			}
		}
	}
}

// rowSample is one observation of a stored row.
type rowSample struct {
	index int64
	sum   int64
}

// watchRows samples every row of TradeAggregation_SECONDS and MINUTES until stop, and
// reports any row whose TALLY_INDEX or value went back.
func watchRows(ctx context.Context, t *testing.T, db *sql.DB, stop <-chan struct{}) (done func() (samples int)) {
	var wg sync.WaitGroup
	var samples atomic.Int64
	seen := map[string]rowSample{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for _, table := range []string{"TradeAggregation_SECONDS", "TradeAggregation_MINUTES"} {
				rows, err := db.QueryContext(ctx, "SELECT AGG_TIMESTAMP, SHARD_ID, AGG_EVENT_TIMESTAMP, symbol, TALLY_INDEX, AGG_SUM_quantity FROM "+table)
				if err != nil {
					continue
				}
				for rows.Next() {
					var ts, ets, idx, sum int64
					var shard, sym string
					if err := rows.Scan(&ts, &shard, &ets, &sym, &idx, &sum); err != nil {
						break
					}
					k := fmt.Sprintf("%s/%d/%s/%d/%s", table, ts, shard, ets, sym)
					if prev, ok := seen[k]; ok && (idx < prev.index || (idx == prev.index && sum != prev.sum) || sum < prev.sum) {
						t.Errorf("row %s went back: index %d sum %d after index %d sum %d", k, idx, sum, prev.index, prev.sum)
					}
					seen[k] = rowSample{idx, sum}
					samples.Add(1)
				}
				rows.Close()
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int { wg.Wait(); return int(samples.Load()) }
}

// TestStore_DeposedLeaderCannotRollBack: a leader frozen with SIGSTOP is replaced; the new
// leader changes the same rows further and flushes them; the old one wakes up (SIGCONT) with
// its stale rows and may flush them: no stored row ever goes back, and after the final flush
// the stored totals equal the live ones. Re-flushed rows leave totals unchanged.
func TestStore_DeposedLeaderCannotRollBack(t *testing.T) {
	dsn, _ := mariadbtest.Start(t)
	c := newCluster(t, 3, "--store-dsn", dsn, "--flush-interval", "100ms")
	db := openSQL(t, dsn)
	stop := make(chan struct{})
	done := watchRows(t.Context(), t, db, stop)

	leader := c.waitLeader(10 * time.Second)
	load := &producerLoad{c: c, events: 2}
	load.run(3) // each producer keeps adding to its own symbol: rows grow
	c.eventually(10*time.Second, "acknowledgements", func() bool {
		load.mu.Lock()
		defer load.mu.Unlock()
		return len(load.acks) > 30
	})
	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var next *node
	c.eventually(10*time.Second, "a new leader while the old one is frozen", func() bool {
		for _, nd := range c.followers(leader) {
			if st, err := c.status(nd); err == nil && st.Groups[0].Role == "leader" {
				next = nd
				return true
			}
		}
		return false
	})
	load.mu.Lock()
	n := len(load.acks)
	load.mu.Unlock()
	c.eventually(10*time.Second, "acknowledgements from the new leader", func() bool {
		load.mu.Lock()
		defer load.mu.Unlock()
		return len(load.acks) > n+30
	})
	if err := leader.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let the woken node run its flusher before it learns it was deposed
	load.finish()
	load.checkExactlyOnce(t)
	live, err := c.totals(next, "linearizable", 0)
	if err != nil {
		t.Fatal(err)
	}
	c.eventually(15*time.Second, "stored totals equal the live ones", func() bool {
		got, err := c.totals(next, "stored", 0)
		return err == nil && reflect.DeepEqual(got, live)
	})
	close(stop)
	if samples := done(); samples == 0 {
		t.Fatal("the watcher saw no rows: the test tested nothing")
	}
}

// TestStore_Outage: MariaDB stopped for 30 s under load. No acknowledged event is lost, the
// rows are complete after it returns, and ingest answers 503 for the backlog only once the
// rows held in memory passed --max-unflushed-rows.
func TestStore_Outage(t *testing.T) {
	outage := 30 * time.Second
	if os.Getenv("TALLY_SHORT_OUTAGE") != "" {
		outage = 5 * time.Second
		t.Log("TALLY_SHORT_OUTAGE set: the outage lasts 5 s instead of 30 s")
	}
	dsn, srv := mariadbtest.Start(t)
	const bound = 600
	c := newCluster(t, 3, "--store-dsn", dsn, "--flush-interval", "200ms", "--max-unflushed-rows", fmt.Sprint(bound))

	// One new symbol per batch: every acknowledged batch adds six rows (sec … year).
	var acked, backlog503 atomic.Int64
	var firstBacklogAt atomic.Int64 // acked count when the first backlog 503 came
	firstBacklogAt.Store(-1)
	var wg sync.WaitGroup
	stopLoad := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); ; seq++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			ev := tradeAt(fmt.Sprintf("sym%05d", seq), 1, 1514783400000)
			for attempt := 0; ; attempt++ {
				nd := c.nodes[attempt%len(c.nodes)] // any node: followers forward
				res, err := c.ingest(t.Context(), nd, "outage", seq, ev)
				if err == nil && res.code == 200 {
					acked.Add(1)
					break
				}
				if err == nil && res.code == 503 && strings.Contains(res.body, "backlog") {
					if backlog503.Add(1) == 1 {
						firstBacklogAt.Store(acked.Load())
					}
				} else if err == nil && res.code != 503 {
					t.Errorf("seq %d: %d %s", seq, res.code, res.body)
					return
				}
				select {
				case <-stopLoad:
					// Keep retrying this seq until acknowledged: its outcome must be known.
				case <-time.After(50 * time.Millisecond):
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	c.eventually(10*time.Second, "some load before the outage", func() bool { return acked.Load() > 20 })
	before := acked.Load()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("MariaDB stopped after %d acknowledged batches", before)
	time.Sleep(outage)
	if backlog503.Load() == 0 {
		t.Errorf("no backlog 503 in a %s outage with a bound of %d rows (acknowledged %d)", outage, bound, acked.Load())
	}
	// Backlog refusals start only once the unflushed rows passed the bound: each batch adds
	// six rows, so about bound/6 batches go through during the outage first (less those of
	// the last flush interval before it, not yet flushed when it began).
	if at := firstBacklogAt.Load(); at-before < bound/6-25 || at-before > bound/6+20 {
		t.Errorf("first backlog 503 after %d batches into the outage; the bound of %d rows allows about %d", at-before, bound, bound/6)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c.eventually(30*time.Second, "ingest resumes after MariaDB returns", func() bool {
		n := acked.Load()
		time.Sleep(300 * time.Millisecond)
		return acked.Load() > n
	})
	close(stopLoad)
	wg.Wait()
	want := acked.Load()
	c.eventually(30*time.Second, "every acknowledged batch in the store", func() bool {
		got, err := c.totals(c.waitLeader(10*time.Second), "stored", 0)
		if err != nil {
			return false
		}
		var sum int64
		for _, v := range got {
			sum += v[0]
		}
		return sum == want && int64(len(got)) == want
	})
	t.Logf("acknowledged %d batches; %d backlog 503s; first after %d batches into the outage", want, backlog503.Load(), firstBacklogAt.Load()-before)
}

// TestStore_RefusesSiddhiTableAndShardChange: an app whose table was made by Siddhi before
// partitioning (no SHARD_ID in its primary key) is refused at deploy with the SQL that
// migrates it, and nothing is written; a node restarted with another --shard-id refuses to
// run.
func TestStore_RefusesSiddhiTableAndShardChange(t *testing.T) {
	dsn, _ := mariadbtest.Start(t)
	db := openSQL(t, dsn)
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE LegacyAgg_HOURS (AGG_TIMESTAMP BIGINT, AGG_EVENT_TIMESTAMP BIGINT,
  symbol VARCHAR(254), AGG_SUM_quantity BIGINT, PRIMARY KEY (AGG_TIMESTAMP, AGG_EVENT_TIMESTAMP, symbol))`); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 1, "--store-dsn", dsn, "--shard-id", "site-a")
	nd := c.nodes[0]
	app := `@app:name('Legacy')
define stream LegacyStream (symbol string, quantity long, ts long);
define aggregation LegacyAgg from LegacyStream select symbol, sum(quantity) as total group by symbol aggregate by ts every hour;`
	resp, err := c.http.Post("http://"+nd.httpAddr+"/v1/apps", "text/plain", strings.NewReader(app))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "SHARD_ID") || !strings.Contains(string(body), "ALTER TABLE") {
		t.Errorf("deploy over a Siddhi table: %d %s; want 400 naming SHARD_ID with the ALTER TABLE", resp.StatusCode, body)
	}
	var apps struct{ Apps []struct{ Name string } }
	if err := c.getJSON(nd, "/v1/apps", &apps); err != nil || len(apps.Apps) != 1 {
		t.Errorf("apps after the refused deploy: %+v, %v; want only TradeApp", apps, err)
	}
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM LegacyAgg_HOURS").Scan(&n); err != nil || n != 0 {
		t.Errorf("LegacyAgg_HOURS has %d rows (%v); want it untouched", n, err)
	}

	// A shard ID never changes.
	c.stop(nd)
	for i, a := range nd.args {
		if a == "site-a" {
			nd.args[i] = "site-b"
		}
	}
	cmd := exec.Command(binary, nd.args...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "differs from this group's shard ID") || !strings.Contains(string(out), "site-a") {
		t.Errorf("restart with another shard ID: %v\n%s", err, out)
	}
}
