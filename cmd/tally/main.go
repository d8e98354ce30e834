// Command tally is Tally's command line: `tally serve` runs a node; `tally replay` runs an
// app over recorded events offline.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: tally <command> [flags]

commands:
  serve    run a node of a Tally cluster
  replay   run a SiddhiQL app over recorded events and print outputs or a query's answer

client commands (talk to a running node: --addr, default http://127.0.0.1:7070, or TALLY_ADDR):
  status   show the cluster: groups, roles, leaders, indexes, members; nodes, replicas, moves
  nodes    list the nodes or drain one: tally nodes list|drain ID
  transfer hand a group's leadership to another voter: tally transfer --group G [--to ID]
  query    answer a store query: tally query 'from Agg within ... per "hours" select ...'
  ingest   send NDJSON events to a stream in batches, exactly once, retrying when unavailable
  apps     deploy, list or remove SiddhiQL apps: tally apps deploy|list|remove
  tail     follow a query output stream (alerts) as NDJSON: tally tail Alerts [--from ID]
  bench    load generator: N clients send trade events for a while; prints events/s and latency

Run 'tally <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serveMain(ctx, args[1:], stderr)
	case "replay":
		return replayMain(ctx, args[1:], stdin, stdout, stderr)
	case "status":
		return statusMain(ctx, args[1:], stdout, stderr)
	case "nodes":
		return nodesMain(ctx, args[1:], stdout, stderr)
	case "transfer":
		return transferMain(ctx, args[1:], stdout, stderr)
	case "query":
		return queryMain(ctx, args[1:], stdout, stderr)
	case "ingest":
		return ingestMain(ctx, args[1:], stdin, stdout, stderr)
	case "apps":
		return appsMain(ctx, args[1:], stdin, stdout, stderr)
	case "tail":
		return tailMain(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchMain(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tally: unknown command %q\n\n%s", args[0], usage)
	return 2
}
