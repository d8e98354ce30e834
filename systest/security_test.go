package systest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/internal/certtest"
)

// authTransport sends every request over TLS verified with a CA, with HTTP Basic
// credentials when user is set.
type authTransport struct {
	base           *http.Transport
	user, password string
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.user != "" {
		r = r.Clone(r.Context())
		r.SetBasicAuth(a.user, a.password)
	}
	return a.base.RoundTrip(r)
}

// TestSecurity_TLSAndUsers starts three nodes with --tls-cert/--tls-key/--tls-ca and --auth
// and checks what the security model promises from the outside: credentials and permissions
// on every route (also through a follower), no plain HTTP, no node whose certificate another
// CA signed, no crash from a huge expression, no sink aimed at a link-local address.
func TestSecurity_TLSAndUsers(t *testing.T) {
	dir := t.TempDir()
	certs := certtest.New(t, filepath.Join(dir, "ca"), "n1", "n2", "n3")
	rogue := certtest.New(t, filepath.Join(dir, "rogue-ca"), "n4")
	users := filepath.Join(dir, "users.json")
	if err := os.WriteFile(users, []byte(`[
		{"username":"admin","password":"admin-pw","perms":["all"]},
		{"username":"reader","password":"r","perms":["read"]},
		{"username":"writer","password":"w","perms":["write"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	base := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(base.CloseIdleConnections)
	as := func(user, password string) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: authTransport{base, user, password}}
	}
	c := &cluster{t: t, dir: dir, http: as("admin", "admin-pw"), scheme: "https"}
	t.Cleanup(c.stopAll)
	appFile := filepath.Join(dir, "trades.siddhi")
	if err := os.WriteFile(appFile, []byte(tradeApp), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsArgs := func(cs *certtest.Certs, id string) []string {
		return []string{"--tls-cert", cs.Pairs[id].Cert, "--tls-key", cs.Pairs[id].Key, "--tls-ca", cs.CA, "--auth", users}
	}
	for i := range 3 {
		nd := &node{id: fmt.Sprintf("n%d", i+1), httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
		nd.dataDir, nd.logPath = filepath.Join(dir, nd.id), filepath.Join(dir, nd.id+".log")
		nd.args = append([]string{"serve", "--id", nd.id, "--data-dir", nd.dataDir, "--http-addr", nd.httpAddr, "--raft-addr", nd.raftAddr},
			tlsArgs(certs, nd.id)...)
		if i == 0 {
			nd.args = append(nd.args, "--bootstrap", "--app", appFile)
		} else {
			nd.args = append(nd.args, "--join", "https://"+c.nodes[0].httpAddr)
		}
		c.nodes = append(c.nodes, nd)
		c.start(nd)
		if i == 0 {
			c.waitLeader(10 * time.Second)
		}
	}
	voters := func() []string {
		st, err := c.status(c.nodes[0])
		if err != nil {
			return nil
		}
		var ids []string
		for _, m := range st.Groups[0].Members {
			if m.Voter {
				ids = append(ids, m.ID)
			}
		}
		return ids
	}
	c.eventually(20*time.Second, "3 voters", func() bool { return len(voters()) == 3 })
	leader := c.waitLeader(10 * time.Second)
	follower := c.followers(leader)[0]

	const event = `{"symbol":"wso2","price":100.0,"quantity":10,"timestamp":1514783400000}`
	const app = "@app:name('X') define stream XS (v long);"
	huge := "@app:name('Huge') define stream HS (v long);\nfrom HS select v" + strings.Repeat("+v", 200_000) + " as w insert into HO;"
	const linkLocal = `@app:name('Meta') define stream MS (v long);
@sink(type='http', publisher.url='http://169.254.169.254/latest/meta-data', @map(type='json'))
define stream MO (v long);
from MS select v insert into MO;`
	cases := []struct {
		name, method, path, body string
		client                   *http.Client
		code                     int
	}{
		{"no credentials", "GET", "/v1/cluster/status", "", as("", ""), 401},
		{"the console's page without credentials", "GET", "/ui/", "", as("", ""), 200},
		{"reader ingesting", "POST", "/v1/streams/TradeStream/events", event, as("reader", "r"), 403},
		{"writer deploying", "POST", "/v1/apps", app, as("writer", "w"), 403},
		{"writer joining", "POST", "/v1/cluster/join", `{"id":"n9","raft_addr":"127.0.0.1:1"}`, as("writer", "w"), 403},
		{"writer ingesting through a follower", "POST", "/v1/streams/TradeStream/events", event, as("writer", "w"), 200},
		{"admin deploying", "POST", "/v1/apps", app, as("admin", "admin-pw"), 201},
		{"a 200,000-term expression", "POST", "/v1/apps", huge, as("admin", "admin-pw"), 400},
		{"a sink aimed at 169.254.169.254", "POST", "/v1/apps", linkLocal, as("admin", "admin-pw"), 400},
	}
	for _, tc := range cases {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, c.url(follower, tc.path), strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tc.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
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
	for _, nd := range c.nodes {
		resp, err := as("", "").Get(c.url(nd, "/readyz"))
		if err != nil {
			t.Fatalf("%s readyz: %v", nd.id, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s is not ready after the bad requests: %d", nd.id, resp.StatusCode)
		}
		// Plain HTTP to the HTTPS port gets no API answer.
		if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + nd.httpAddr + "/v1/cluster/status"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "groups") {
				t.Errorf("%s answered plain HTTP: %d %s", nd.id, resp.StatusCode, b)
			}
		}
	}

	// A node whose certificate another CA signed cannot join: it cannot even talk to the
	// cluster, and the members stay n1..n3.
	rogueDir := filepath.Join(dir, "n4")
	cmd := exec.Command(binary, append([]string{"serve", "--id", "n4", "--data-dir", rogueDir, "--http-addr", freeAddr(t),
		"--raft-addr", freeAddr(t), "--join", "https://" + c.nodes[0].httpAddr}, tlsArgs(rogue, "n4")...)...)
	log, err := os.Create(filepath.Join(dir, "n4.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st, err := c.status(c.nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		if n := len(st.Groups[0].Members); n != 3 {
			t.Fatalf("a node with another CA's certificate changed the members: %+v", st.Groups[0].Members)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := strings.Join(voters(), ","); got != "n1,n2,n3" {
		t.Errorf("voters after the rogue join: %s, want n1,n2,n3", got)
	}
}
