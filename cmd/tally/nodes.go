package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tally-db/tally/client"
)

// clusterMap reads the cluster map from the node of c: its JSON as the node sent it, and
// decoded. A node that runs without a cluster map (404) gives neither, and no error.
func clusterMap(ctx context.Context, c *client.Client) ([]byte, *client.ClusterMap, error) {
	body, err := c.Call(ctx, http.MethodGet, "/v1/cluster/map", nil, "", nil)
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cluster map: %w", plain(err))
	}
	var m client.ClusterMap
	if err := decodeJSON(body, &m); err != nil {
		return nil, nil, fmt.Errorf("cluster map: %w", err)
	}
	return bytes.TrimSpace(body), &m, nil
}

// withField adds "name": value to the JSON object obj, keeping obj's bytes as they are.
// obj that is not an object is returned unchanged.
func withField(obj []byte, name string, value []byte) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return obj
	}
	out := append([]byte(nil), obj[:len(obj)-1]...)
	if len(bytes.TrimSpace(obj[1:len(obj)-1])) > 0 {
		out = append(out, ',')
	}
	out = fmt.Appendf(out, "%q:", name)
	out = append(out, value...)
	return append(out, '}')
}

// leadersOf returns the leader of each group as the node's status names it.
func leadersOf(st *client.Status) map[uint32]string {
	out := map[uint32]string{}
	if st == nil {
		return out
	}
	for _, g := range st.Groups {
		if g.Leader != nil && g.Leader.ID != "" {
			out[g.ID] = g.Leader.ID
		}
	}
	return out
}

// printMap prints the cluster map: a summary line, the nodes, each group's voters and
// leader (from st, which may be nil), the deployed apps' names and the moves in progress.
func printMap(w io.Writer, m *client.ClusterMap, st *client.Status) {
	ctl := "unknown"
	if m.Controller != nil && m.Controller.ID != "" {
		ctl = m.Controller.ID
	}
	fmt.Fprintf(w, "cluster map at index %d: %d nodes, %d groups of %d replicas, controller leader %s\n",
		m.Index, len(m.Nodes), len(m.Groups), m.Replicas, ctl)
	leaders := leadersOf(st)
	printNodes(w, m, leaders)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tKEYS\tVOTERS\tLEADER")
	for _, g := range m.Groups {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", g.ID, dash(g.Keys), dash(strings.Join(g.Voters, ",")), dash(leaders[g.ID]))
	}
	tw.Flush()
	if len(m.Apps) > 0 {
		names := make([]string, len(m.Apps))
		for i, a := range m.Apps {
			names[i] = a.Name
		}
		fmt.Fprintf(w, "\napps: %s\n", strings.Join(names, ", "))
	}
	moves := m.Moves()
	if len(moves) == 0 {
		fmt.Fprintln(w, "\nmoves in progress: none")
		return
	}
	fmt.Fprintln(w, "\nmoves in progress:")
	for _, mv := range moves {
		fmt.Fprintf(w, "  %s\n", mv)
	}
}

// printNodes prints the nodes of the map with the replicas and the leaderships each holds.
func printNodes(w io.Writer, m *client.ClusterMap, leaders map[uint32]string) {
	led := map[string]int{}
	for _, id := range leaders {
		led[id]++
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tZONE\tSTATE\tREPLICAS\tLEADERS\tHTTP\tRAFT")
	for _, n := range m.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", n.ID, dash(n.Zone), n.State, m.ReplicasOn(n.ID), led[n.ID], dash(n.HTTPAddr), dash(n.RaftAddr))
	}
	tw.Flush()
}

// ---- tally nodes ----

const nodesUsage = `usage: tally nodes <list|drain> [flags]

  tally nodes list [--json]   list the nodes of the cluster map: zone, state, replicas, leaders
  tally nodes drain ID        move every replica off node ID, then remove it from the map (admin)

Every subcommand takes --addr (env TALLY_ADDR), --user and --timeout; 'tally nodes <sub> -h'
lists them.
`

func nodesMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, nodesUsage)
		return 2
	}
	switch args[0] {
	case "list", "ls":
		return nodesListMain(ctx, args[1:], stdout, stderr)
	case "drain":
		return nodesDrainMain(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, nodesUsage)
		return 0
	}
	fmt.Fprintf(stderr, "tally nodes: unknown subcommand %q\n\n%s", args[0], nodesUsage)
	return 2
}

const nodesListUsage = `usage: tally nodes list [--addr URL] [--json]

Lists the nodes of the cluster map (GET /v1/cluster/map): ID, zone, state (active, draining
or dead), the replicas each holds, the groups it leads (as the answering node knows them,
GET /v1/cluster/status) and its addresses. --json prints the cluster map as it is.

flags:
`

func nodesListMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("nodes list", nodesListUsage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 10*time.Second)
	raw := fs.Bool("json", false, "print the server's cluster map as it is")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "tally nodes list: unexpected arguments: %s\n", strings.Join(pos, " "))
		fs.Usage()
		return 2
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "nodes list", err)
	}
	body, m, err := clusterMap(ctx, c)
	if err != nil {
		return fail(stderr, "nodes list", err)
	}
	if m == nil {
		return fail(stderr, "nodes list", errors.New("the node runs without a cluster map (a node of this version answers GET /v1/cluster/map)"))
	}
	if *raw {
		stdout.Write(append(body, '\n'))
		return 0
	}
	st, err := c.Status(ctx)
	if err != nil {
		return fail(stderr, "nodes list", fmt.Errorf("read the groups' leaders: %w", plain(err)))
	}
	printNodes(stdout, m, leadersOf(st))
	return 0
}

const nodesDrainUsage = `usage: tally nodes drain [--addr URL] [--user USER:PASSWORD] ID

Drains node ID (POST /v1/cluster/nodes/ID/drain, admin permission): it takes no new
replicas, its replicas move to the other nodes one group at a time, then it leaves the
cluster map. The command returns as soon as the cluster recorded the node as draining;
follow the moves with 'tally status'. Once the node no longer appears there, stop it.

flags:
`

func nodesDrainMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("nodes drain", nodesDrainUsage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 30*time.Second)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		fmt.Fprintln(stderr, "tally nodes drain: give the ID of one node (tally nodes list shows them)")
		fs.Usage()
		return 2
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "nodes drain", err)
	}
	if err := c.Drain(ctx, pos[0]); err != nil {
		return fail(stderr, "nodes drain", plain(err))
	}
	fmt.Fprintf(stdout, "%s: draining; follow with tally status\n", pos[0])
	return 0
}
