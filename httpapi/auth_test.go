package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/security"
	"github.com/tally-db/tally/siddhiql"
)

// testUsers has one user per permission, and a token for root.
const testUsers = `[
	{"username":"reader","password":"r","perms":["read"]},
	{"username":"writer","password":"w","perms":["write"]},
	{"username":"admin","password":"a","perms":["admin"]},
	{"username":"a","password":"a","perms":["write","read"]},
	{"username":"b","password":"b","perms":["write","read"]},
	{"username":"root","password":"x","token":"root-token-0123456789","perms":["all"]}
]`

func parseUsers(t *testing.T, file string) *security.Users {
	t.Helper()
	us, err := security.ParseUsers([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// basic is an Authorization header with HTTP Basic credentials.
func basic(user, password string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

func TestAuth_CredentialsAndPermissions(t *testing.T) {
	n, srv := newSingleNode(t, Config{Users: parseUsers(t, testUsers)})
	ingestURL := srv.URL + "/v1/streams/TradeStream/events"
	const app2 = "@app:name('Other') define stream O (x long);"
	cases := []struct {
		name, method, path, body string
		headers                  []string
		code                     int
		msg                      string
	}{
		{"no credentials", "POST", "/v1/streams/TradeStream/events", goodEvent, nil, 401, "authentication required"},
		{"wrong password", "POST", "/v1/streams/TradeStream/events", goodEvent, basic("writer", "nope"), 401, "wrong username, password or token"},
		{"unknown user", "GET", "/v1/cluster/status", "", basic("mallory", "w"), 401, "wrong username"},
		{"wrong token", "GET", "/v1/cluster/status", "", []string{"Authorization", "Bearer root-token-0000000000"}, 401, "wrong"},
		{"reader ingesting", "POST", "/v1/streams/TradeStream/events", goodEvent, basic("reader", "r"), 403, `user \"reader\" may not POST /v1/streams/TradeStream/events: that needs the \"write\" permission`},
		{"writer deploying", "POST", "/v1/apps", app2, basic("writer", "w"), 403, `needs the \"admin\" permission`},
		{"writer removing an app", "DELETE", "/v1/apps/TradeApp", "", basic("writer", "w"), 403, `needs the \"admin\" permission`},
		{"writer joining", "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1"}`, basic("writer", "w"), 403, "joining needs a node identity"},
		{"admin joining", "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1"}`, basic("admin", "a"), 403, "joining needs a node identity"},
		{"anonymous joining", "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1"}`, nil, 401, "authentication required"},
		{"admin reading internal rows", "POST", "/v1/internal/rows?group=0", totalQuery, basic("admin", "a"), 403, "for cluster nodes only"},
		{"writer removing a node", "DELETE", "/v1/cluster/nodes/n1", "", basic("writer", "w"), 403, `\"admin\"`},
		{"reader transferring", "POST", "/v1/cluster/transfer", "", basic("reader", "r"), 403, `\"admin\"`},
		{"writer reading debug state", "GET", "/v1/debug/state", "", basic("writer", "w"), 403, `\"admin\"`},
		{"reader reading app texts", "GET", "/v1/apps?text=true", "", basic("reader", "r"), 403, `\"admin\"`},
		{"writer querying", "POST", "/stores/query", totalQuery, basic("writer", "w"), 403, `\"read\"`},
		{"forged on-behalf-of from a writer", "POST", "/v1/apps", app2, append(basic("writer", "w"), onBehalfOfHeader, "admin"), 403, `user \"writer\" may not POST /v1/apps`},
		{"forged on-behalf-of alone", "POST", "/v1/apps", app2, []string{onBehalfOfHeader, "admin"}, 401, "authentication required"},
		{"healthz is open", "GET", "/healthz", "", nil, 200, `"ok"`},
		{"readyz is open", "GET", "/readyz", "", nil, 200, `"ready"`},
		{"reader reading status", "GET", "/v1/cluster/status", "", basic("reader", "r"), 200, `"id":"n1"`},
		{"reader listing apps", "GET", "/v1/apps", "", basic("reader", "r"), 200, `"TradeApp"`},
		{"reader reading metrics", "GET", "/metrics", "", basic("reader", "r"), 200, "tally_http_requests_total"},
		{"reader querying", "POST", "/stores/query", totalQuery, basic("reader", "r"), 200, `"records"`},
		{"token user reading app texts", "GET", "/v1/apps?text=true", "", []string{"Authorization", "Bearer root-token-0123456789"}, 200, "define aggregation TradeAggregation"},
		{"unknown route for a user", "GET", "/v1/nope", "", basic("reader", "r"), 404, "no such endpoint"},
		{"unknown route without credentials", "GET", "/v1/nope", "", nil, 401, "authentication required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := n.FSM().AppliedIndex()
			r := do(t, c.method, srv.URL+c.path, c.body, c.headers...)
			if r.code != c.code || !strings.Contains(r.body, c.msg) {
				t.Fatalf("got %d %s; want %d containing %s", r.code, r.body, c.code, c.msg)
			}
			if c.code == 401 && r.header.Get("WWW-Authenticate") != `Basic realm="tally"` {
				t.Errorf("401 without WWW-Authenticate: %v", r.header)
			}
			if c.code >= 400 && n.FSM().AppliedIndex() != before {
				t.Errorf("a refused request moved the applied index")
			}
		})
	}
	// What each may do.
	if r := do(t, "POST", ingestURL, goodEvent, basic("writer", "w")...); r.code != 200 || !strings.Contains(r.body, `"events":1`) {
		t.Errorf("writer ingesting: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", srv.URL+"/v1/apps", app2, basic("admin", "a")...); r.code != 201 {
		t.Errorf("admin deploying: %d %s", r.code, r.body)
	}
	if r := do(t, "DELETE", srv.URL+"/v1/apps/Other", "", basic("admin", "a")...); r.code != 200 {
		t.Errorf("admin removing: %d %s", r.code, r.body)
	}
	// Refused requests are counted under their route.
	m := do(t, "GET", srv.URL+"/metrics", "", basic("reader", "r")...)
	for _, want := range []string{`tally_http_requests_total{code="401",route="/v1/streams/{stream}/events"} 2`, `tally_http_requests_total{code="403",route="/v1/apps"} 3`} {
		if !strings.Contains(m.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestAuth_ProducersAreScopedToTheirUser: the same Producer-Id and seq from two users are two
// producers, while a user's retry is still a duplicate.
func TestAuth_ProducersAreScopedToTheirUser(t *testing.T) {
	n, srv := newSingleNode(t, Config{Users: parseUsers(t, testUsers)})
	url := srv.URL + "/v1/streams/TradeStream/events"
	for _, u := range []string{"a", "b"} {
		for seq := 1; seq <= 50; seq++ {
			h := append(basic(u, u), "Producer-Id", "p", "Producer-Seq", fmt.Sprint(seq))
			r := do(t, "POST", url, goodEvent, h...)
			if r.code != 200 || !strings.Contains(r.body, `"duplicate":false`) {
				t.Fatalf("%s seq %d: %d %s", u, seq, r.code, r.body)
			}
		}
	}
	r := do(t, "POST", url, goodEvent, append(basic("a", "a"), "Producer-Id", "p", "Producer-Seq", "50")...)
	if r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Fatalf("a's retry: %d %s", r.code, r.body)
	}
	// 100 events of 10 each.
	if r := do(t, "POST", srv.URL+"/stores/query", totalQuery, basic("a", "a")...); r.body != `{"records":[["wso2",1000]]}`+"\n" {
		t.Fatalf("total: %d %s", r.code, r.body)
	}
	if !inState(t, n, "a/p") || !inState(t, n, "b/p") {
		t.Fatal("the dedup table does not hold producers a/p and b/p")
	}
}

// inState reports whether s occurs in the encoded FSM state of n (its dedup table holds
// producer IDs as strings).
func inState(t *testing.T, n *raftnode.Node, s string) bool {
	t.Helper()
	b, err := n.FSM().State()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}

// TestRouteAccess_EveryRoute: every route the API serves has a permission.
func TestRouteAccess_EveryRoute(t *testing.T) {
	s := New(Config{Profiling: true}, []Group{leaderless{}}, nil, raftnode.NewResolver())
	n := 0
	err := chi.Walk(s.mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		n++
		if strings.HasPrefix(route, "/debug/pprof") {
			return nil
		}
		_, ok := routeAccess[method+" "+route]
		if _, all := routeAccess["* "+route]; !ok && !all {
			t.Errorf("route %s %s has no entry in routeAccess", method, route)
		}
		return nil
	})
	if err != nil || n < len(routeAccess) {
		t.Fatalf("walked %d routes: %v", n, err)
	}
	// pprof is admin-only.
	req, _ := http.NewRequest("GET", "/debug/pprof/heap", nil)
	if a, _ := s.accessOf(req); a.perm != permAdmin || a.node {
		t.Errorf("pprof: %+v", a)
	}
	req, _ = http.NewRequest("GET", "/debug/pprof/", nil)
	if a, _ := s.accessOf(req); a.perm != permAdmin {
		t.Errorf("pprof index: %+v", a)
	}
}

// nodeKey is the test's node identity: a header only nodes send.
const nodeKey = "X-Test-Node-Key"

func withAuth(users *security.Users) func(*Config) {
	return func(c *Config) {
		c.Users = users
		c.NodeIdentity = func(r *http.Request) bool { return r.Header.Get(nodeKey) == "cluster-secret" }
		c.NodeCredentials = func(r *http.Request) { r.Header.Set(nodeKey, "cluster-secret") }
	}
}

// TestAuth_ForwardedAsTheUser: a follower forwards a user's requests with the user's name,
// and the leader checks that user's permissions itself. Here the follower's users file says
// more than the leader's: the leader's word holds.
func TestAuth_ForwardedAsTheUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	leaderUsers := parseUsers(t, testUsers)
	// On the follower, writer is also an admin.
	followerUsers := parseUsers(t, strings.Replace(testUsers, `"username":"writer","password":"w","perms":["write"]`, `"username":"writer","password":"w","perms":["write","admin"]`, 1))
	n1 := startTCPNode(t, "n1", true, nil, withAuth(leaderUsers))
	waitFor(t, n1.node.IsLeader, "n1 leads")
	_, idx, err := n1.node.Deploy(ctx, tradeApp)
	if err != nil {
		t.Fatal(err)
	}
	n2 := startTCPNode(t, "n2", false, nil, withAuth(followerUsers))
	// A join through the API needs a node identity.
	join := `{"id":"n2","raft_addr":"` + n2.mux.Addr().String() + `"}`
	if r := do(t, "POST", "http://"+n1.httpAddr+"/v1/cluster/join", join, basic("root", "x")...); r.code != 403 {
		t.Fatalf("join as a user: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", "http://"+n1.httpAddr+"/v1/cluster/join", join, nodeKey, "cluster-secret"); r.code != 200 {
		t.Fatalf("join as a node: %d %s", r.code, r.body)
	}
	waitVoter(t, n1.node, "n2")
	if err := n2.node.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { id, _, err := n2.node.Leader(); return err == nil && id == "n1" }, "n2 knows n1 leads")
	follower := "http://" + n2.httpAddr
	leader := "http://" + n1.httpAddr

	// Ingest through the follower, batched: the leader applies it as writer's, scoping the
	// producer once, so the same seq sent to the leader itself is a duplicate.
	h := append(basic("writer", "w"), "Producer-Id", "p", "Producer-Seq", "1")
	if r := do(t, "POST", follower+"/v1/streams/TradeStream/events", goodEvent, h...); r.code != 200 || !strings.Contains(r.body, `"duplicate":false`) {
		t.Fatalf("ingest through the follower: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", leader+"/v1/streams/TradeStream/events", goodEvent, h...); r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Fatalf("the same producer seq on the leader: %d %s", r.code, r.body)
	}
	if !inState(t, n1.node, "writer/p") || inState(t, n1.node, "writer/writer/p") {
		t.Fatal("the producer is not scoped exactly once: want writer/p in the dedup table")
	}
	// One by one (?redirect=false is the default; a forwarded request with ?group=).
	if r := do(t, "POST", follower+"/v1/streams/TradeStream/events?group=0", goodEvent, basic("writer", "w")...); r.code != 200 {
		t.Fatalf("ingest with ?group= through the follower: %d %s", r.code, r.body)
	}
	// The follower refuses what its own file refuses.
	if r := do(t, "POST", follower+"/v1/streams/TradeStream/events", goodEvent, basic("reader", "r")...); r.code != 403 {
		t.Fatalf("reader ingesting through the follower: %d %s", r.code, r.body)
	}
	// A linearizable query on the follower reads the leader's rows as the reader.
	if r := do(t, "POST", follower+"/stores/query", totalQuery, basic("reader", "r")...); r.code != 200 || !strings.Contains(r.body, `["wso2",20]`) {
		t.Fatalf("query through the follower: %d %s", r.code, r.body)
	}
	// writer is an admin on the follower only: the leader refuses the deploy.
	const app2 = "@app:name('Other') define stream O (x long);"
	if r := do(t, "POST", follower+"/v1/apps", app2, basic("writer", "w")...); r.code != 403 || !strings.Contains(r.body, `user \"writer\" may not POST /v1/apps`) {
		t.Fatalf("deploy as writer through the follower: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", follower+"/v1/apps", app2, basic("admin", "a")...); r.code != 201 {
		t.Fatalf("deploy as admin through the follower: %d %s", r.code, r.body)
	}
	// A transfer asked of the follower is forwarded as admin.
	if r := do(t, "POST", follower+"/v1/cluster/transfer?to=n2", "", basic("writer", "w")...); r.code != 403 {
		t.Fatalf("transfer as writer through the follower: %d %s", r.code, r.body)
	}
	// With the node identity, the leader acts for the named user, and no more.
	if r := do(t, "DELETE", leader+"/v1/apps/Other", "", nodeKey, "cluster-secret", onBehalfOfHeader, "writer"); r.code != 403 {
		t.Fatalf("a node acting for writer removing an app: %d %s", r.code, r.body)
	}
	if r := do(t, "DELETE", leader+"/v1/apps/Other", "", nodeKey, "wrong-secret", onBehalfOfHeader, "admin"); r.code != 401 {
		t.Fatalf("a wrong node key acting for admin: %d %s", r.code, r.body)
	}
	var apps struct{ Apps []AppInfo }
	r := do(t, "GET", leader+"/v1/apps", "", basic("reader", "r")...)
	if err := json.Unmarshal([]byte(r.body), &apps); err != nil || len(apps.Apps) != 2 {
		t.Fatalf("apps: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", follower+"/v1/cluster/transfer?to=n2", "", basic("admin", "a")...); r.code != 200 || !strings.Contains(r.body, `"leader":"n2"`) {
		t.Fatalf("transfer as admin through the follower: %d %s", r.code, r.body)
	}
}

// TestAuth_NodeIdentityWithoutUsers: with node identities but no users file, user routes
// stay open and node routes answer only nodes.
func TestAuth_NodeIdentityWithoutUsers(t *testing.T) {
	cfg := Config{}
	withAuth(nil)(&cfg)
	cfg.Users = nil
	_, srv := newSingleNode(t, cfg)
	join := `{"id":"n1","raft_addr":"x"}`
	if r := do(t, "POST", srv.URL+"/v1/cluster/join", join); r.code != 403 || !strings.Contains(r.body, "joining needs a node identity") {
		t.Errorf("join without identity: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", srv.URL+"/v1/internal/rows?group=0", totalQuery); r.code != 403 || !strings.Contains(r.body, "for cluster nodes only") {
		t.Errorf("rows without identity: %d %s", r.code, r.body)
	}
	// A node passes the middleware (the join then fails on its own merits: n1 at x).
	if r := do(t, "POST", srv.URL+"/v1/cluster/join", join, nodeKey, "cluster-secret"); r.code != 409 {
		t.Errorf("join as a node: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", srv.URL+"/v1/streams/TradeStream/events", goodEvent, onBehalfOfHeader, "someone"); r.code != 200 {
		t.Errorf("ingest without users: %d %s", r.code, r.body)
	}
}

// TestAuth_ForwardedBatchChecksEachUser: a leader takes a forwarded batch only from a node,
// and checks the write permission of the user each entry acts for, undecoded or decoded.
func TestAuth_ForwardedBatchChecksEachUser(t *testing.T) {
	cfg := Config{}
	withAuth(parseUsers(t, testUsers))(&cfg)
	n, srv := newSingleNode(t, cfg)
	var def *siddhiql.StreamDef
	n.FSM().Read(func(e fsm.View) { def, _ = e.Stream("TradeStream") })
	rows, apiErr := decodeEvents(def.Attributes, []byte(goodEvent))
	if apiErr != nil {
		t.Fatal(apiErr.Error)
	}
	var batch []*fwdEntry
	for _, user := range []string{"reader", "writer"} {
		// Scoped by the node that took the request.
		batch = append(batch, &fwdEntry{user: user, raw: &rawRequest{stream: "TradeStream", producerID: user + "/p", seq: 1, body: []byte(goodEvent)}})
	}
	for _, user := range []string{"reader", "writer"} {
		batch = append(batch, &fwdEntry{user: user, part: &fsm.Part{Stream: "TradeStream", ProducerID: user + "/q", Seq: 1, Events: rows}})
	}
	data, err := encodeForwarded(batch)
	if err != nil {
		t.Fatal(err)
	}
	url := srv.URL + "/v1/internal/ingest?group=0"
	if r := do(t, "POST", url, string(data), basic("root", "x")...); r.code != 403 {
		t.Fatalf("a batch from a user: %d %s", r.code, r.body)
	}
	r := do(t, "POST", url, string(data), nodeKey, "cluster-secret")
	if r.code != 200 {
		t.Fatalf("a batch from a node: %d %s", r.code, r.body)
	}
	res, err := decodeResults([]byte(r.body), len(batch))
	if err != nil {
		t.Fatal(err)
	}
	want := []code{codeForbidden, codeOK, codeForbidden, codeOK}
	for i, c := range want {
		if len(res[i]) != 1 || res[i][0].code != c {
			t.Errorf("entry %d: %+v, want code %d", i, res[i], c)
			continue
		}
		if c == codeForbidden && !strings.Contains(res[i][0].msg, `user "reader" may not ingest into stream "TradeStream"`) {
			t.Errorf("entry %d: %s", i, res[i][0].msg)
		}
	}
	if !inState(t, n, "writer/p") || !inState(t, n, "writer/q") || inState(t, n, "reader/") {
		t.Fatal("want producers writer/p and writer/q, no reader's")
	}
}
