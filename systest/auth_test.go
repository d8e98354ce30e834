package systest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// basicAuth adds HTTP Basic credentials to every request.
type basicAuth struct{ user, password string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return http.DefaultTransport.RoundTrip(r)
}

// TestServe_Auth: tally serve --auth asks for credentials and permissions on every route but
// the health checks, profiles included, with bcrypt and plain passwords.
func TestServe_Auth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("admin-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: t.TempDir(), http: &http.Client{Timeout: 10 * time.Second, Transport: basicAuth{"admin", "admin-pw"}}}
	t.Cleanup(c.stopAll)
	users := filepath.Join(c.dir, "users.json")
	if err := os.WriteFile(users, fmt.Appendf(nil, `[
		{"username":"admin","password_hash":%q,"perms":["all"]},
		{"username":"reader","password":"r","perms":["read"]},
		{"username":"writer","password":"w","perms":["write"]}]`, hash), 0o600); err != nil {
		t.Fatal(err)
	}
	appFile := filepath.Join(c.dir, "trades.siddhi")
	if err := os.WriteFile(appFile, []byte(tradeApp), 0o644); err != nil {
		t.Fatal(err)
	}
	nd := &node{id: "n1", httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
	nd.dataDir, nd.logPath = filepath.Join(c.dir, "n1"), filepath.Join(c.dir, "n1.log")
	key := filepath.Join(c.dir, "cluster.key") // --auth needs a node identity: TLS or a cluster key
	if err := os.WriteFile(key, []byte("a cluster secret of enough bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	nd.args = []string{"serve", "--id", "n1", "--data-dir", nd.dataDir, "--http-addr", nd.httpAddr, "--raft-addr", nd.raftAddr,
		"--bootstrap", "--app", appFile, "--auth", users, "--cluster-key", key, "--pprof"}
	c.nodes = append(c.nodes, nd)
	c.start(nd) // /healthz answers without credentials
	c.waitLeader(10 * time.Second)
	c.eventually(10*time.Second, "app deployed", func() bool {
		var out struct{ Apps []struct{ Name string } }
		return c.getJSON(nd, "/v1/apps", &out) == nil && len(out.Apps) == 1
	})

	base := "http://" + nd.httpAddr
	const event = `{"symbol":"wso2","price":100.0,"quantity":10,"timestamp":1514783400000}`
	cases := []struct {
		name, method, path, body, user, password string
		code                                     int
	}{
		{"status without credentials", "GET", "/v1/cluster/status", "", "", "", 401},
		{"readyz without credentials", "GET", "/readyz", "", "", "", 200},
		{"wrong bcrypt password", "GET", "/v1/cluster/status", "", "admin", "nope", 401},
		{"reader reading status", "GET", "/v1/cluster/status", "", "reader", "r", 200},
		{"reader ingesting", "POST", "/v1/streams/TradeStream/events", event, "reader", "r", 403},
		{"writer ingesting", "POST", "/v1/streams/TradeStream/events", event, "writer", "w", 200},
		{"reader profiling", "GET", "/debug/pprof/", "", "reader", "r", 403},
		{"admin profiling", "GET", "/debug/pprof/", "", "admin", "admin-pw", 200},
		{"writer deploying", "POST", "/v1/apps", "@app:name('X') define stream X (v long);", "writer", "w", 403},
		{"admin deploying", "POST", "/v1/apps", "@app:name('X') define stream X (v long);", "admin", "admin-pw", 201},
		{"admin joining", "POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1"}`, "admin", "admin-pw", 403},
	}
	for _, tc := range cases {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, base+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, b, tc.code)
		}
		if tc.code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
}
