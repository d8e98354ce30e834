// Command tally-bench holds the parts of `make bench` (scripts/bench.sh) that are not Tally
// itself:
//
//	tally-bench raft     the raw Raft ceiling: hashicorp/raft with raft-boltdb/v2 (fsync on) and a
//	                     no-op FSM, 3 replicas in this process over TCP on 127.0.0.1, fed entries
//	                     the size of a Tally batch of --events events from --proposers goroutines
//	tally-bench mariadb  the same aggregation as TradeAggregation done directly in MariaDB:
//	                     1000-event transactions of INSERT ... ON DUPLICATE KEY UPDATE into
//	                     sec ... year tables (a throwaway server from internal/mariadbtest)
//	tally-bench load     posts each of --keys distinct symbols once to a Tally cluster
//	tally-bench report   turns the results directory written by scripts/bench.sh into the
//	                     generated section of BENCHMARKS.md
//
// Every measuring mode prints one JSON object on stdout and progress on stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tally-bench raft|mariadb|load|report [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "raft":
		err = raftMain(ctx, os.Args[2:])
	case "mariadb":
		err = mariadbMain(ctx, os.Args[2:])
	case "load":
		err = loadMain(ctx, os.Args[2:])
	case "report":
		err = reportMain(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "tally-bench: unknown mode %q (raft, mariadb, load, report)\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tally-bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// progress prints, every second until stop is called, how much *counter grew in that
// second, with format (one %d).
func progress(counter *atomic.Int64, format string) (stop func()) {
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		last := int64(0)
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				n := counter.Load()
				fmt.Fprintf(os.Stderr, format+"\n", n-last)
				last = n
			}
		}
	}()
	return func() { close(done) }
}
