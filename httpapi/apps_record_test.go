package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/raftnode"
)

// appMap is a Cluster whose map records apps: it answers what err says and remembers
// what it was asked.
type appMap struct {
	fakeCluster
	mu    sync.Mutex
	err   error
	calls []string
}

func (r *appMap) DeployApp(_ context.Context, text string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "deploy")
	if r.err != nil {
		return "", r.err
	}
	r.m.Apps = append(r.m.Apps, clustermap.App{Name: "TradeApp", Text: text, Index: 7})
	return "TradeApp", nil
}

func (r *appMap) UndeployApp(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "undeploy "+name)
	return r.err
}

func (r *appMap) Map() clustermap.Map {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Clone()
}

func (r *appMap) set(err error) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := r.calls
	r.err, r.calls = err, nil
	return calls
}

// TestApps_RecordedBeforeDeploy: with a cluster map of apps, a deploy and an undeploy are
// recorded first; one the map refuses is answered with its error and never reaches the
// group; without a known controller leader it is retried, then 503; a request another node forwarded (a
// fan-out) is not recorded again; the map's JSON leaves the texts out.
func TestApps_RecordedBeforeDeploy(t *testing.T) {
	rec := &appMap{}
	rec.m.Replicas = 1
	_, srv := newSingleNode(t, Config{Cluster: rec})
	appCount := func() int {
		r := do(t, "GET", srv.URL+"/v1/apps", "")
		return strings.Count(r.body, `"name":`)
	}
	base := appCount() // the trade app newSingleNode deployed

	other := strings.Replace(tradeApp, "TradeApp", "Other", 1)
	other = strings.ReplaceAll(other, "TradeStream", "OtherStream")
	other = strings.ReplaceAll(other, "TradeAggregation", "OtherAggregation")
	cases := []struct {
		err      error
		wantCode int
		want     string
	}{
		{fmt.Errorf("%w: sink URL http://169.254.169.254/ targets a link-local address", raftnode.ErrAppRefused), 400, "link-local"},
		{raftnode.ErrNotLeader, 503, "no controller leader is known"},
		{fmt.Errorf("%w: deploy: the cluster exists already", clustermap.ErrRefused), 400, "refused"},
	}
	for _, c := range cases {
		rec.set(c.err)
		r := do(t, "POST", srv.URL+"/v1/apps", other)
		if r.code != c.wantCode || !strings.Contains(r.body, c.want) {
			t.Errorf("map answering %v: %d %s; want %d with %q", c.err, r.code, r.body, c.wantCode, c.want)
		}
		// A 503 is retried (recording is idempotent), a refusal is not.
		if calls := rec.set(nil); (c.wantCode == 503) != (len(calls) > 1) || calls[0] != "deploy" {
			t.Errorf("map answering %v: calls %v", c.err, calls)
		}
		if n := appCount(); n != base {
			t.Errorf("map answering %v: the group runs %d apps, want %d", c.err, n, base)
		}
	}

	r := do(t, "POST", srv.URL+"/v1/apps", other)
	if r.code != http.StatusCreated || !strings.Contains(r.body, `"groups":[{"group":0,"status":201`) {
		t.Fatalf("deploy: %d %s", r.code, r.body)
	}
	if calls := rec.set(nil); len(calls) != 1 || appCount() != base+1 {
		t.Errorf("deploy recorded %v; the group runs %d apps, want %d", calls, appCount(), base+1)
	}
	// A fan-out from another node: recorded there, not here.
	if r := do(t, "POST", srv.URL+"/v1/apps?group=0", other, forwardedHeader, "n2"); r.code != http.StatusCreated {
		t.Errorf("forwarded deploy: %d %s", r.code, r.body)
	}
	if calls := rec.set(nil); len(calls) != 0 {
		t.Errorf("a forwarded deploy was recorded again: %v", calls)
	}

	m := do(t, "GET", srv.URL+"/v1/cluster/map", "")
	if !strings.Contains(m.body, `"apps":[{"name":"TradeApp","index":7}]`) || strings.Contains(m.body, "define stream") {
		t.Errorf("GET /v1/cluster/map: %s", m.body)
	}

	rec.set(raftnode.ErrUnknownOutcome)
	if r := do(t, "DELETE", srv.URL+"/v1/apps/Other", ""); r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("undeploy with the map's outcome unknown: %d %s", r.code, r.body)
	}
	if calls := rec.set(nil); len(calls) < 2 || calls[0] != "undeploy Other" || appCount() != base+1 {
		t.Errorf("a failed undeploy: calls %v, %d apps", calls, appCount())
	}
	if r := do(t, "DELETE", srv.URL+"/v1/apps/Other", ""); r.code != http.StatusOK || appCount() != base {
		t.Errorf("undeploy: %d %s, %d apps", r.code, r.body, appCount())
	}
}
