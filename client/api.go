package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Consistency levels of a query (QueryOptions.Consistency).
const (
	// Linearizable reads every group's rows on its leader (the server's default).
	Linearizable = "linearizable"
	// Stale reads the answering node's own replicas, which may lag.
	Stale = "stale"
	// Stored reads the shared store and the node's replicas, without asking the leaders.
	Stored = "stored"
)

// Indexes are Raft log indexes by group: where a write was committed. A query with
// MinIndex waits until each group's replica has applied at least its index, so it sees
// those writes (read your writes) at any consistency.
type Indexes map[uint32]uint64

// String renders the indexes as ?min_index= takes them: "GROUP:INDEX,...", by group.
func (ix Indexes) String() string {
	gs := make([]uint32, 0, len(ix))
	for g := range ix {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i] < gs[j] })
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = strconv.FormatUint(uint64(g), 10) + ":" + strconv.FormatUint(ix[g], 10)
	}
	return strings.Join(parts, ",")
}

// merge raises ix to the indexes of other.
func (ix Indexes) merge(other Indexes) {
	for g, i := range other {
		ix[g] = max(ix[g], i)
	}
}

// QueryOptions are the options of Query. The zero value is a linearizable query.
type QueryOptions struct {
	// Consistency is Linearizable, Stale or Stored ("" is the server's default,
	// linearizable).
	Consistency string
	// MinIndex makes the query wait until every group's replica has applied at least its
	// index (Publisher.Indexes gives them).
	MinIndex Indexes
}

// Column names and types one column of a query answer.
type Column struct {
	Name     string `json:"name"`
	DataType string `json:"dataType"`
}

// Result is the answer of a store query.
type Result struct {
	// Records are the rows. Numbers are json.Number, so a long keeps every digit: use
	// its Int64 or Float64 method.
	Records [][]any `json:"records"`
	// Details names and types the columns.
	Details []Column `json:"details"`
}

// Query runs a store query (SiddhiQL "from AGGREGATION within ... per ... select ...") on
// the app named app, through POST /stores/query.
func (c *Client) Query(ctx context.Context, app, query string, opts QueryOptions) (*Result, error) {
	body, err := json.Marshal(map[string]any{"appName": app, "query": query, "details": true})
	if err != nil {
		return nil, fmt.Errorf("client: encode query: %w", err)
	}
	q := url.Values{}
	if opts.Consistency != "" {
		q.Set("consistency", opts.Consistency)
	}
	if len(opts.MinIndex) > 0 {
		q.Set("min_index", opts.MinIndex.String())
	}
	resp, err := c.do(ctx, &request{method: http.MethodPost, path: "/stores/query", query: q,
		header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}, body: body})
	if err != nil {
		return nil, fmt.Errorf("query app %s: %w", app, err)
	}
	var res Result
	if err := decode(resp, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Member is one member of a group's Raft configuration.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
}

// Leader names a group's leader.
type Leader struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// GroupStatus is a node's view of one partition group.
type GroupStatus struct {
	ID           uint32   `json:"id"`
	ShardID      string   `json:"shard_id"`
	Role         string   `json:"role"` // leader, follower or candidate
	Leader       *Leader  `json:"leader"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	LastIndex    uint64   `json:"last_index"`
	Lag          uint64   `json:"lag"`
	Members      []Member `json:"members"`
}

// Status is one node's view of the cluster: GET /v1/cluster/status.
type Status struct {
	// ID is the node's ID.
	ID     string        `json:"id"`
	Groups []GroupStatus `json:"groups"`
}

// Voters lists the IDs of group g's voting members.
func (s *Status) Voters(g int) []string {
	if g < 0 || g >= len(s.Groups) {
		return nil
	}
	var out []string
	for _, m := range s.Groups[g].Members {
		if m.Voter {
			out = append(out, m.ID)
		}
	}
	return out
}

// Status returns the view of the first node that answers.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.getJSON(ctx, "/v1/cluster/status", nil, &st); err != nil {
		return nil, fmt.Errorf("cluster status: %w", err)
	}
	return &st, nil
}

// NodeStatus returns the view of the node at addr (one of Nodes, or any other node's
// base URL), without failing over.
func (c *Client) NodeStatus(ctx context.Context, addr string) (*Status, error) {
	base, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, base, &request{method: http.MethodGet, path: "/v1/cluster/status", header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", base, err)
	}
	var st Status
	if err := decode(resp, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// GroupOutcome is one group's part of an operation every group applies.
type GroupOutcome struct {
	Group  int    `json:"group"`
	Status int    `json:"status"`
	Index  uint64 `json:"index,omitempty"`
	Error  string `json:"error,omitempty"`
}

// DeployResult is the answer to Deploy and Undeploy.
type DeployResult struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Index is the Raft index of group 0's entry.
	Index  uint64         `json:"index"`
	Groups []GroupOutcome `json:"groups"`
}

// Indexes returns the index of every group's entry, for QueryOptions.MinIndex.
func (r *DeployResult) Indexes() Indexes {
	ix := Indexes{}
	for _, g := range r.Groups {
		if g.Index > 0 {
			ix[uint32(g.Group)] = g.Index
		}
	}
	return ix
}

// Deploy deploys the SiddhiQL app text to every group. Deploying the same text again
// changes nothing, so a failed deploy is retried by calling Deploy again.
func (c *Client) Deploy(ctx context.Context, text string) (*DeployResult, error) {
	resp, err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/apps",
		header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Accept": {"application/json"}}, body: []byte(text)})
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	var res DeployResult
	if err := decode(resp, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Undeploy removes the app named name from every group. An app already removed from some
// groups (a retried removal) counts as removed there; one removed from all is
// ErrBadRequest (404).
func (c *Client) Undeploy(ctx context.Context, name string) (*DeployResult, error) {
	resp, err := c.do(ctx, &request{method: http.MethodDelete, path: "/v1/apps/" + url.PathEscape(name), header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return nil, fmt.Errorf("undeploy %s: %w", name, err)
	}
	var res DeployResult
	if err := decode(resp, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// App describes a deployed app.
type App struct {
	Name         string   `json:"name"`
	Streams      []string `json:"streams"`
	Aggregations []string `json:"aggregations"`
	Queries      int      `json:"queries"`
	// Text is the app's SiddhiQL (AppsWithText only).
	Text string `json:"text,omitempty"`
}

// Apps lists the deployed apps.
func (c *Client) Apps(ctx context.Context) ([]App, error) { return c.apps(ctx, false) }

// AppsWithText lists the deployed apps with their SiddhiQL text.
func (c *Client) AppsWithText(ctx context.Context) ([]App, error) { return c.apps(ctx, true) }

func (c *Client) apps(ctx context.Context, text bool) ([]App, error) {
	var q url.Values
	if text {
		q = url.Values{"text": {"true"}}
	}
	var out struct {
		Apps []App `json:"apps"`
	}
	if err := c.getJSON(ctx, "/v1/apps", q, &out); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return out.Apps, nil
}
