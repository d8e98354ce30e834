package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tally-db/tally/client"
)

// ---- tally status ----

const statusUsage = `usage: tally status [--addr URL] [--json]

Shows a node's view of the cluster (GET /v1/cluster/status): the node's ID, then per
partition group its shard, Raft role, leader, term, commit and applied indexes, apply lag
and members. Then, from the cluster map (GET /v1/cluster/map): the nodes with their zone,
state, the replicas and leaderships each holds, each group's voters and leader, the names of
the deployed apps, and the replica moves in progress ("g3: +n7 -n2": group 3 gains a
replica on n7, loses n2's).

--json prints the node's status as it sends it, with the cluster map added as "map".

flags:
`

func statusMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", statusUsage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 10*time.Second)
	raw := fs.Bool("json", false, "print the server's JSON answer as it is, the cluster map added as \"map\"")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "tally status: unexpected arguments: %s\n", strings.Join(pos, " "))
		fs.Usage()
		return 2
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "status", err)
	}
	body, err := c.Call(ctx, http.MethodGet, "/v1/cluster/status", nil, "", nil)
	if err != nil {
		return fail(stderr, "status", plain(err))
	}
	var st client.Status
	if err := decodeJSON(body, &st); err != nil {
		return fail(stderr, "status", err)
	}
	mapBody, m, mapErr := clusterMap(ctx, c)
	if *raw {
		out := bytes.TrimSpace(body)
		if mapBody != nil {
			out = withField(out, "map", mapBody)
		}
		stdout.Write(append(out, '\n'))
	} else {
		printStatus(stdout, &st)
		if m != nil {
			fmt.Fprintln(stdout)
			printMap(stdout, m, &st)
		}
	}
	if mapErr != nil {
		return fail(stderr, "status", mapErr)
	}
	return 0
}

// printStatus prints a node's status: its ID and a table of its groups.
func printStatus(w io.Writer, st *client.Status) {
	fmt.Fprintf(w, "node %s\n", st.ID)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSHARD\tROLE\tLEADER\tLEADER HTTP\tTERM\tCOMMIT\tAPPLIED\tLAG\tMEMBERS")
	for _, g := range st.Groups {
		leader, leaderHTTP := "-", "-"
		if g.Leader != nil {
			leader = g.Leader.ID
			if g.Leader.HTTPAddr != "" {
				leaderHTTP = g.Leader.HTTPAddr
			}
		}
		members := make([]string, len(g.Members))
		for i, m := range g.Members {
			members[i] = m.ID
			if !m.Voter {
				members[i] += " (nonvoter)"
			}
		}
		ms := strings.Join(members, ",")
		if ms == "" {
			ms = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", g.ID, dash(g.ShardID), g.Role, leader, leaderHTTP,
			g.Term, g.CommitIndex, g.AppliedIndex, g.Lag, ms)
	}
	tw.Flush()
}

// ---- tally transfer ----

const transferUsage = `usage: tally transfer [--addr URL] [--group G] [--to ID] [--json]

Hands the leadership of a partition group to another voter (POST /v1/cluster/transfer) and
prints the new leader once it is known. Without --to, Raft picks the most up-to-date voter.
--group may be left out when the cluster has one group. Any node takes the request: a node
that does not lead the group passes it to the leader.

flags:
`

func transferMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("transfer", transferUsage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 30*time.Second)
	group := fs.String("group", "", "the partition group (default: the only one)")
	to := fs.String("to", "", "ID of the voter to take over (default: Raft's pick)")
	raw := fs.Bool("json", false, "print the server's JSON answer as it is")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "tally transfer: unexpected arguments: %s\n", strings.Join(pos, " "))
		fs.Usage()
		return 2
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "transfer", err)
	}
	// --group goes to the server as given, which names what is wrong with it.
	q := url.Values{}
	if *group != "" {
		q.Set("group", *group)
	}
	if *to != "" {
		q.Set("to", *to)
	}
	body, err := c.Call(ctx, http.MethodPost, "/v1/cluster/transfer", q, "", nil)
	if err != nil {
		return fail(stderr, "transfer", plain(err))
	}
	if *raw {
		stdout.Write(append(bytes.TrimSpace(body), '\n'))
		return 0
	}
	var a client.TransferResult
	if err := decodeJSON(body, &a); err != nil {
		return fail(stderr, "transfer", err)
	}
	fmt.Fprintf(stdout, "group %d: leader is now %s\n", a.Group, a.Leader)
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---- tally query ----

const queryUsage = `usage: tally query [--app NAME] [--consistency stale] [--details] [--table] 'from ... select ...'

Answers a store query on the cluster (POST /stores/query, Siddhi's store API) and prints the
answer as the server sends it: {"records":[[...],...]} on one line. With --table, prints an
aligned table with the column names as headers instead.

  tally query 'from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice'

--app may be left out when exactly one app is deployed.

flags:
`

// storeQueryBody is Siddhi's store API request.
type storeQueryBody struct {
	AppName string `json:"appName"`
	Query   string `json:"query"`
	Details bool   `json:"details"`
}

func queryMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("query", queryUsage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 30*time.Second)
	app := fs.String("app", "", "app to query (default: the only deployed app)")
	consistency := fs.String("consistency", "", "linearizable (the default: answered by the leader) or stale (any replica's own state)")
	details := fs.Bool("details", false, "add the column names and types to the answer as \"details\"")
	table := fs.Bool("table", false, "print an aligned table instead of JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		fmt.Fprintln(stderr, "tally query: give the store query as one argument, in single quotes")
		fs.Usage()
		return 2
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "query", err)
	}
	if *app == "" {
		if *app, err = onlyApp(ctx, c); err != nil {
			return fail(stderr, "query", err)
		}
	}
	body, _ := json.Marshal(storeQueryBody{AppName: *app, Query: pos[0], Details: *details || *table})
	var q url.Values
	if *consistency != "" {
		q = url.Values{"consistency": {*consistency}}
	}
	// The answer is printed as the server wrote it, so the query goes through Call.
	ans, err := c.Call(ctx, http.MethodPost, "/stores/query", q, "application/json", body)
	if err != nil {
		return fail(stderr, "query", plain(err))
	}
	if !*table {
		stdout.Write(append(bytes.TrimSpace(ans), '\n'))
		return 0
	}
	if err := printRecords(stdout, ans); err != nil {
		return fail(stderr, "query", err)
	}
	return 0
}

// appsAnswer is the answer of GET /v1/apps.
type appsAnswer struct {
	Apps []client.App `json:"apps"`
}

// onlyApp returns the name of the one deployed app.
func onlyApp(ctx context.Context, c *client.Client) (string, error) {
	apps, err := c.Apps(ctx)
	if err != nil {
		return "", fmt.Errorf("list apps to pick one: %w", plain(err))
	}
	switch len(apps) {
	case 0:
		return "", errors.New("no app is deployed: deploy one with 'tally apps deploy FILE.siddhi'")
	case 1:
		return apps[0].Name, nil
	}
	names := make([]string, len(apps))
	for i, ap := range apps {
		names[i] = ap.Name
	}
	return "", fmt.Errorf("%d apps are deployed (%s): say which with --app", len(names), strings.Join(names, ", "))
}

// printRecords prints a store query answer with details as an aligned table.
func printRecords(w io.Writer, body []byte) error {
	var ans struct {
		Records [][]any `json:"records"`
		Details []struct {
			Name     string `json:"name"`
			DataType string `json:"dataType"`
		} `json:"details"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // print numbers exactly as the server wrote them
	if err := dec.Decode(&ans); err != nil {
		return fmt.Errorf("unexpected answer from the server (%v): %.200s", err, body)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cols := len(ans.Details)
	for _, rec := range ans.Records {
		cols = max(cols, len(rec))
	}
	head := make([]string, cols)
	for i := range head {
		if i < len(ans.Details) {
			head[i] = ans.Details[i].Name
		} else {
			head[i] = "col" + strconv.Itoa(i+1)
		}
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, rec := range ans.Records {
		cells := make([]string, len(rec))
		for i, v := range rec {
			cells[i] = cell(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rows := "rows"
	if len(ans.Records) == 1 {
		rows = "row"
	}
	_, err := fmt.Fprintf(w, "(%d %s)\n", len(ans.Records), rows)
	return err
}

func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ---- tally apps ----

const appsUsage = `usage: tally apps <deploy|list|remove> [flags]

  tally apps deploy FILE.siddhi   deploy (or replace) an app; - reads standard input
  tally apps list [--json]        list the deployed apps
  tally apps remove NAME          remove an app and its state

Every subcommand takes --addr (env TALLY_ADDR) and --timeout; 'tally apps <sub> -h' lists them.
`

func appsMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, appsUsage)
		return 2
	}
	switch args[0] {
	case "deploy":
		return appsDeployMain(ctx, args[1:], stdin, stdout, stderr)
	case "list", "ls":
		return appsListMain(ctx, args[1:], stdout, stderr)
	case "remove", "rm":
		return appsRemoveMain(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, appsUsage)
		return 0
	}
	fmt.Fprintf(stderr, "tally apps: unknown subcommand %q\n\n%s", args[0], appsUsage)
	return 2
}

func appsDeployMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("apps deploy", "usage: tally apps deploy [--addr URL] FILE.siddhi|-\n\nDeploys a SiddhiQL app on the cluster (POST /v1/apps). An app of the same name is replaced.\n\nflags:\n", stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 30*time.Second)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "tally apps deploy: give one app file (or - for standard input)")
		fs.Usage()
		return 2
	}
	var text []byte
	if pos[0] == "-" {
		text, err = io.ReadAll(stdin)
	} else {
		text, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fail(stderr, "apps deploy", fmt.Errorf("read app: %w", err))
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "apps deploy", err)
	}
	a, err := c.Deploy(ctx, string(text))
	if err != nil {
		return fail(stderr, "apps deploy", plain(err))
	}
	fmt.Fprintf(stdout, "deployed %s (log index %d)\n", a.Name, a.Index)
	return 0
}

func appsListMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var a appsAnswer
	if code, done := getCommand(ctx, "apps list", "usage: tally apps list [--addr URL] [--json]\n\nLists the deployed apps (GET /v1/apps).\n\nflags:\n",
		"/v1/apps", args, stdout, stderr, &a); done {
		return code
	}
	if len(a.Apps) == 0 {
		fmt.Fprintln(stderr, "no apps deployed")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTREAMS\tAGGREGATIONS\tQUERIES")
	for _, ap := range a.Apps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", ap.Name, dash(strings.Join(ap.Streams, ",")), dash(strings.Join(ap.Aggregations, ",")), ap.Queries)
	}
	tw.Flush()
	return 0
}

func appsRemoveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("apps remove", "usage: tally apps remove [--addr URL] NAME\n\nRemoves a deployed app and its state (DELETE /v1/apps/NAME).\n\nflags:\n", stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 30*time.Second)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 || pos[0] == "" {
		fmt.Fprintln(stderr, "tally apps remove: give the name of one app")
		fs.Usage()
		return 2
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "apps remove", err)
	}
	a, err := c.Undeploy(ctx, pos[0])
	if err != nil {
		return fail(stderr, "apps remove", plain(err))
	}
	fmt.Fprintf(stdout, "removed %s (log index %d)\n", a.Name, a.Index)
	return 0
}

// getCommand runs the common part of a client command that takes no arguments and GETs
// path: flags, the request, and --json (the answer printed as it is). Otherwise it decodes
// the answer into v for the caller to print. done is true when the command is over, with
// code its exit code.
func getCommand(ctx context.Context, name, usage, path string, args []string, stdout, stderr io.Writer, v any) (code int, done bool) {
	fs := newFlagSet(name, usage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 10*time.Second)
	raw := fs.Bool("json", false, "print the server's JSON answer as it is")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err), true
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "tally %s: unexpected arguments: %s\n", name, strings.Join(pos, " "))
		fs.Usage()
		return 2, true
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, name, err), true
	}
	// --json prints the answer as the server wrote it, so the request goes through Call.
	body, err := c.Call(ctx, http.MethodGet, path, nil, "", nil)
	if err != nil {
		return fail(stderr, name, plain(err)), true
	}
	if *raw {
		stdout.Write(append(bytes.TrimSpace(body), '\n'))
		return 0, true
	}
	if err := decodeJSON(body, v); err != nil {
		return fail(stderr, name, err), true
	}
	return 0, false
}
