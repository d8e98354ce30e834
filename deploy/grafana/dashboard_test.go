// Package grafana holds Tally's Grafana dashboard (tally.json); its test checks that every
// metric the dashboard queries is exported by a running node.
package grafana

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/store"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// metricName matches the metric names of a PromQL expression that the dashboard may use.
var metricName = regexp.MustCompile(`\b(?:tally|process|go|raft)_[a-zA-Z0-9_]*[a-zA-Z0-9]`)

// queried returns every metric name the dashboard's panels and variables query, with the
// panels that use it.
func queried(t *testing.T, d *dashboard) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(where, expr string) {
		for _, name := range metricName.FindAllString(expr, -1) {
			if !slices.Contains(out[name], where) {
				out[name] = append(out[name], where)
			}
		}
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty expr", p.Title)
			}
			add("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := json.Marshal(v.Query)
		add("variable "+v.Name, string(q))
	}
	return out
}

// exported parses a /metrics answer into family names and their types.
func exported(body string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

// missing returns the names queried that the families do not export: a histogram's or a
// summary's _bucket, _sum and _count series belong to its family.
func missing(queried map[string][]string, families map[string]string) []string {
	var out []string
	for name, where := range queried {
		if _, ok := families[name]; ok {
			continue
		}
		found := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, suffix)
			if typ := families[base]; ok && (typ == "histogram" || (typ == "summary" && suffix != "_bucket")) {
				found = true
			}
		}
		if !found {
			out = append(out, fmt.Sprintf("%s (%s)", name, strings.Join(where, ", ")))
		}
	}
	slices.Sort(out)
	return out
}

const app = `@app:name('Shop')
define stream Sales (item string, amount long, ts long);
@sink(type='log', prefix='BIG')
define stream Big (item string, amount long);
from Sales[amount > 100] select item, amount insert into Big;
define aggregation SalesAgg
  from Sales
  select item, sum(amount) as total
  group by item
  aggregate by ts every sec ... year;
`

// oneNodeMap is the cluster map of a one-node cluster of one group, so the node exports
// the cluster map's metrics too.
type oneNodeMap struct{}

func (oneNodeMap) Map() clustermap.Map {
	return clustermap.Map{Index: 3, Replicas: 1, Nodes: []clustermap.Node{{ID: "n1"}},
		Groups: []clustermap.Group{{ID: 0, Shard: "s1", Keys: clustermap.KeysOf(0, 1), Voters: []string{"n1"}}}}
}
func (oneNodeMap) ControllerLeader() (id, raftAddr string)             { return "n1", "" }
func (oneNodeMap) Register(context.Context, httpapi.JoinRequest) error { return nil }
func (oneNodeMap) Drain(context.Context, string) error                 { return nil }

// startNode runs a one-node cluster with a store in-process, ingests into it and waits
// until it has flushed and delivered, so every family has something to show.
func startNode(t *testing.T) string {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, trans := raft.NewInmemTransport("")
	nc := raftnode.DefaultConfig()
	nc.ID, nc.DataDir, nc.Bootstrap, nc.ShardID = "n1", t.TempDir(), true, "s1"
	nc.HeartbeatTimeout, nc.ElectionTimeout, nc.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	nc.Store, nc.FlushInterval, nc.Logger = st, 20*time.Millisecond, logger
	n, err := raftnode.Open(nc, trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	cfg := httpapi.DefaultConfig()
	cfg.NodeID, cfg.Logger = "n1", logger
	cfg.Cluster = oneNodeMap{}
	srv := httptest.NewServer(httpapi.New(cfg, []httpapi.Group{n}, st, raftnode.NewResolver()))
	t.Cleanup(srv.Close)

	deadline := time.Now().Add(15 * time.Second)
	post := func(path, body string, headers ...string) {
		for {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+path, strings.NewReader(body))
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 || resp.StatusCode == 201 {
					return
				}
				err = fmt.Errorf("%s: %s", resp.Status, b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("POST %s: %v", path, err)
			}
			time.Sleep(20 * time.Millisecond) // no leader yet
		}
	}
	post("/v1/apps", app, "Content-Type", "text/plain")
	post("/v1/streams/Sales/events", `[{"item":"a","amount":150,"ts":1700000000000},{"item":"b","amount":5,"ts":1700000000000}]`,
		"Producer-Id", "p1", "Producer-Seq", "1")
	for {
		m := n.Metrics()
		if !m.FlushLastSuccess.IsZero() && m.FlushRows > 0 && len(m.Sinks) == 1 && m.Sinks[0].Delivered == 1 {
			return srv.URL
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not flush and deliver: %+v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDashboardQueriesExportedMetrics: every metric the dashboard queries is exported by a
// node that has ingested, flushed and delivered.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("tally.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("tally.json is not JSON: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	hasDatasource := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			hasDatasource = true
		}
	}
	if !hasDatasource {
		t.Error("the dashboard has no Prometheus datasource variable")
	}
	names := queried(t, &d)
	// What the operators look at: each must be on the dashboard.
	for _, want := range []string{"tally_ingest_events_total", "tally_raft_commit_seconds_bucket", "tally_raft_is_leader",
		"tally_flush_backlog_rows", "tally_flush_errors_total", "tally_sink_backlog", "process_resident_memory_bytes",
		"tally_aggregation_keys", "tally_replicas", "tally_cluster_nodes", "tally_moves_in_progress",
		"tally_fsm_applied_events_total"} {
		if names[want] == nil {
			t.Errorf("the dashboard does not query %s", want)
		}
	}
	url := startNode(t)
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	families := exported(string(body))
	t.Logf("/metrics: %d families, %d bytes; the dashboard queries %d names", len(families), len(body), len(names))
	for _, m := range missing(names, families) {
		t.Errorf("the dashboard queries %s, which the node does not export", m)
	}
	// The check itself finds what is missing.
	if got := missing(map[string][]string{"tally_no_such_metric": {"x"}, "tally_raft_term_bucket": {"y"}}, families); len(got) != 2 {
		t.Errorf("missing() let through unexported names: %v", got)
	}
}
