package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tally-db/tally/internal/mariadbtest"
)

// granularities are TradeAggregation's: every sec ... year.
var granularities = []string{"sec", "min", "hour", "day", "month", "year"}

func bucket(g string, ms int64) int64 {
	t := time.UnixMilli(ms).UTC()
	switch g {
	case "sec":
		return ms - ms%1000
	case "min":
		return ms - ms%60000
	case "hour":
		return ms - ms%3600000
	case "day":
		return ms - ms%86400000
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	default:
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	}
}

type mariaResult struct {
	Mode             string  `json:"mode"`
	Clients          int     `json:"clients"`
	EventsPerTx      int     `json:"events_per_tx"`
	Keys             int     `json:"keys"`
	DurationS        float64 `json:"duration_s"`
	Events           int64   `json:"events"`
	EventsPerS       float64 `json:"events_per_s"`
	Transactions     int64   `json:"transactions"`
	MeanTxLatencyMS  float64 `json:"mean_tx_latency_ms"`
	DeadlockRetries  int64   `json:"deadlock_retries"`
	FlushLogAtCommit string  `json:"innodb_flush_log_at_trx_commit"`
}

type aggRow struct {
	sym      string
	sumPrice float64
	count    int64
	sumQty   int64
}

func mariadbMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mariadb", flag.ContinueOnError)
	clients := fs.Int("clients", 8, "concurrent connections, each with one transaction in flight")
	events := fs.Int("events", 1000, "events per transaction")
	keys := fs.Int("keys", 1000, "distinct symbols")
	duration := fs.Duration("duration", 10*time.Second, "how long to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := mariadbtest.StartMain()
	if err != nil {
		return err
	}
	defer srv.Close()
	dsn := strings.TrimPrefix(srv.DSN(), "mysql://") + "?timeout=5s"
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(*clients + 1)
	var flushSetting string
	if err := db.QueryRowContext(ctx, "SELECT @@innodb_flush_log_at_trx_commit").Scan(&flushSetting); err != nil {
		return err
	}
	for _, g := range granularities {
		q := fmt.Sprintf(`CREATE TABLE trade_%s (symbol VARCHAR(64) NOT NULL, agg_timestamp BIGINT NOT NULL,
			sum_price DOUBLE NOT NULL, cnt BIGINT NOT NULL, total BIGINT NOT NULL,
			PRIMARY KEY (symbol, agg_timestamp)) ENGINE=InnoDB`, g)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "tally-bench mariadb: %d clients × %d-event transactions, %d keys, %v, innodb_flush_log_at_trx_commit=%s\n",
		*clients, *events, *keys, *duration, flushSetting)

	var evCount, txCount, latSum, deadlocks atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	end := start.Add(*duration)
	var wg sync.WaitGroup
	for c := range *clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			var sb strings.Builder
			argsBuf := make([]any, 0, *events*5)
			for ctx.Err() == nil && time.Now().Before(end) {
				now := time.Now().UnixMilli()
				// One 1000-event batch, summed per (symbol, bucket) within the batch first
				// (as Tally's engine sums in memory), then one upsert per table.
				per := map[string]*aggRow{}
				for range *events {
					sym := fmt.Sprintf("S%06d", rng.IntN(*keys))
					price := float64(1+rng.IntN(100000)) / 100
					qty := int64(1 + rng.IntN(100))
					r := per[sym]
					if r == nil {
						r = &aggRow{sym: sym}
						per[sym] = r
					}
					r.sumPrice += price
					r.count++
					r.sumQty += qty
				}
				rows := make([]*aggRow, 0, len(per))
				for _, r := range per {
					rows = append(rows, r)
				}
				sort.Slice(rows, func(i, j int) bool { return rows[i].sym < rows[j].sym }) // lock order: fewer deadlocks
				t := time.Now()
				for attempt := 0; ; attempt++ {
					err := func() error {
						tx, err := db.BeginTx(ctx, nil)
						if err != nil {
							return err
						}
						defer tx.Rollback()
						for _, g := range granularities {
							b := bucket(g, now)
							sb.Reset()
							argsBuf = argsBuf[:0]
							fmt.Fprintf(&sb, "INSERT INTO trade_%s (symbol, agg_timestamp, sum_price, cnt, total) VALUES ", g)
							for i, r := range rows {
								if i > 0 {
									sb.WriteByte(',')
								}
								sb.WriteString("(?,?,?,?,?)")
								argsBuf = append(argsBuf, r.sym, b, r.sumPrice, r.count, r.sumQty)
							}
							sb.WriteString(" ON DUPLICATE KEY UPDATE sum_price = sum_price + VALUES(sum_price), cnt = cnt + VALUES(cnt), total = total + VALUES(total)")
							if _, err := tx.ExecContext(ctx, sb.String(), argsBuf...); err != nil {
								return err
							}
						}
						return tx.Commit()
					}()
					if err == nil {
						break
					}
					var me *mysql.MySQLError
					if errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) && attempt < 20 {
						deadlocks.Add(1)
						continue
					}
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				latSum.Add(int64(time.Since(t)))
				txCount.Add(1)
				evCount.Add(int64(*events))
			}
		})
	}
	stop := progress(&evCount, "tally-bench mariadb: %d events/s")
	wg.Wait()
	stop()
	el := time.Since(start).Seconds()
	if firstErr != nil {
		return firstErr
	}
	// Check the sums: every event is counted once per granularity.
	var total int64
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(SUM(cnt),0) FROM trade_year").Scan(&total); err != nil {
		return err
	}
	if total != evCount.Load() {
		return fmt.Errorf("trade_year counts %d events, %d were committed", total, evCount.Load())
	}
	res := mariaResult{Mode: "mariadb", Clients: *clients, EventsPerTx: *events, Keys: *keys, DurationS: el,
		Events: evCount.Load(), EventsPerS: float64(evCount.Load()) / el, Transactions: txCount.Load(),
		DeadlockRetries: deadlocks.Load(), FlushLogAtCommit: flushSetting}
	if n := txCount.Load(); n > 0 {
		res.MeanTxLatencyMS = float64(latSum.Load()) / float64(n) / 1e6
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
