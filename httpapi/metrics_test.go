package httpapi

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/store"
)

// scrape reads /metrics into sample lines by series (name{labels} → value).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	r := do(t, "GET", url+"/metrics", "")
	if r.code != 200 {
		t.Fatalf("/metrics: %d %s", r.code, r.body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsTellTheStory: after ingest, a duplicate, a flush and a snapshot,
// the node's metrics count exactly what happened.
func TestMetricsTellTheStory(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n, srv := newSingleNode(t, Config{}, func(c *raftnode.Config) { c.Store, c.FlushInterval = st, 20*time.Millisecond })
	url := srv.URL + "/v1/streams/TradeStream/events"
	if r := do(t, "POST", url, `[`+goodEvent+`,`+goodEvent+`,`+goodEvent+`]`, "Producer-Id", "p1", "Producer-Seq", "1"); r.code != 200 {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", url, `[`+goodEvent+`]`, "Producer-Id", "p1", "Producer-Seq", "1"); r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Fatalf("retry: %d %s", r.code, r.body)
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var m map[string]float64
	for {
		m = scrape(t, srv.URL)
		// One row per granularity of the one key (sec ... year: 6), then nothing waits.
		_, ok := m[`tally_flush_last_success_timestamp_seconds{group="0"}`]
		if ok && m[`tally_flush_rows_total{group="0"}`] == 6 && m[`tally_flush_backlog_rows{group="0"}`] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful flush in the metrics: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The retry is proposed too (the FSM finds it a duplicate): two entries of 3 and 1 events.
	want := map[string]float64{
		`tally_fsm_applied_events_total{group="0"}`:                             3,
		`tally_dedup_duplicates_total{group="0"}`:                               1,
		`tally_dedup_producers{group="0"}`:                                      1,
		`tally_aggregation_keys{aggregation="TradeAggregation",app="TradeApp"}`: 1,
		`tally_raft_commit_seconds_count{group="0"}`:                            2,
		`tally_ingest_batch_events_count{group="0"}`:                            2,
		`tally_ingest_batch_events_sum{group="0"}`:                              4,
		`tally_ingest_batch_events_bucket{group="0",le="1"}`:                    1,
		`tally_ingest_batch_events_bucket{group="0",le="2"}`:                    1,
		`tally_ingest_batch_events_bucket{group="0",le="4"}`:                    2,
		`tally_raft_snapshot_seconds_count{group="0"}`:                          1,
		`tally_flush_errors_total{group="0"}`:                                   0,
		`tally_subscribers`:                                                     0,
		`tally_raft_leader_changes_total{group="0"}`:                            1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if ts := m[`tally_flush_last_success_timestamp_seconds{group="0"}`]; time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last flush at %v", ts)
	}
	// raft's own metrics are bridged in.
	found := false
	for k := range m {
		if strings.HasPrefix(k, "raft_") {
			found = true
			break
		}
	}
	if !found {
		t.Error("no raft_* metric from hashicorp/raft")
	}
}

// TestMetricsSinksAndSubscribers: a sink's backlog grows while it refuses and drains once it
// accepts, its deliveries are counted, and an open subscription shows.
func TestMetricsSinksAndSubscribers(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer hook.Close()
	_, srv := newSingleNode(t, Config{})
	deployApp(t, srv.URL, alertApp(hook.URL))
	sub := subscribe(t, srv.URL+"/v1/streams/Alerts/subscribe")
	if r := sendQ(t, srv.URL, "x", 102); r.code != 200 {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	sub.next(t)
	const backlog, delivered = `tally_sink_backlog{group="0",sink="Alerts/0"}`, `tally_sink_delivered_total{group="0",sink="Alerts/0"}`
	wait := func(what string, ok func(m map[string]float64) bool) map[string]float64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			m := scrape(t, srv.URL)
			if ok(m) {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: backlog %v, delivered %v", what, m[backlog], m[delivered])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	m := wait("refusing sink", func(m map[string]float64) bool { return m[backlog] == 2 })
	if m[delivered] != 0 || m["tally_subscribers"] != 1 {
		t.Errorf("while refusing: delivered %v, subscribers %v", m[delivered], m["tally_subscribers"])
	}
	refuse.Store(false)
	wait("accepting sink", func(m map[string]float64) bool { return m[backlog] == 0 && m[delivered] == 2 })
	sub.close()
	wait("subscription closed", func(m map[string]float64) bool { return m["tally_subscribers"] == 0 })
}
