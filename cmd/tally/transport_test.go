package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/internal/certtest"
	"github.com/tally-db/tally/node"
	"github.com/tally-db/tally/security"
)

func TestServeConfig_SafeByDefault(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--id", "n1", "--data-dir", filepath.Join(dir, "d")}
	tlsFlags := []string{"--tls-cert", "n.crt", "--tls-key", "n.key", "--tls-ca", "ca.crt"}
	for _, tc := range []struct {
		name    string
		args    []string
		err     []string // substrings of the error; none: no error
		warning bool
	}{
		{"loopback", []string{"--http-addr", "127.0.0.1:7070", "--raft-addr", "[::1]:7071"}, nil, false},
		{"localhost", []string{"--http-addr", "localhost:7070"}, nil, false},
		{"public HTTP address", []string{"--http-addr", "10.0.0.1:7070"},
			[]string{"--http-addr 10.0.0.1:7070 not on a loopback address", "give --auth, --tls-cert, --tls-key, --tls-ca", "--insecure"}, false},
		{"every interface", []string{"--raft-addr", ":7071"}, []string{"--raft-addr :7071", "--auth"}, false},
		{"unspecified IP", []string{"--raft-addr", "0.0.0.0:7071"}, []string{"--raft-addr 0.0.0.0:7071"}, false},
		{"a host name", []string{"--http-addr", "tally-1.internal:7070"}, []string{"--http-addr tally-1.internal:7070"}, false},
		{"TLS without auth", append([]string{"--http-addr", "10.0.0.1:7070"}, tlsFlags...), []string{"give --auth, or --insecure"}, false},
		{"insecure", []string{"--http-addr", "10.0.0.1:7070", "--insecure"}, nil, true},
		{"everything given", append([]string{"--http-addr", "10.0.0.1:7070", "--raft-addr", "10.0.0.1:7071", "--auth", "users.json"}, tlsFlags...), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, append(append([]string{}, base...), tc.args...)...)
			if len(tc.err) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("started")
				}
				for _, want := range tc.err {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			warning, _ := cfg.exposure()
			if (warning != "") != tc.warning {
				t.Errorf("warning %q, want one: %v", warning, tc.warning)
			}
			if tc.warning && !strings.Contains(warning, "--insecure") {
				t.Errorf("warning %q does not name --insecure", warning)
			}
		})
	}
}

func TestWarnInsecure(t *testing.T) {
	var log syncLog
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		warnInsecure(ctx, "exposed", 10*time.Millisecond, slog.New(slog.NewTextHandler(&log, nil)))
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(log.String(), "level=WARN msg=exposed") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the warning was not repeated:\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("warnInsecure did not stop with its context")
	}
}

func TestServeConfig_SecurityFlags(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--id", "n1", "--data-dir", filepath.Join(dir, "d")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "n.crt"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-key", "n.key"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-ca", "ca.crt"}, "--tls-ca needs --tls-cert and --tls-key"},
		{[]string{"--auth", "users.json"}, "nodes need an identity: give --tls-ca or --cluster-key"},
		{[]string{"--auth", "users.json", "--tls-cert", "n.crt", "--tls-key", "n.key"}, "nodes need an identity"},
		{[]string{"--tls-cert", "n.crt", "--tls-key", "n.key", "--join", "http://127.0.0.1:7070"}, "use https://"},
		{[]string{"--max-conns", "0"}, "--max-conns 0"},
	} {
		if _, err := load(t, append(append([]string{}, base...), tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	for _, ok := range [][]string{
		{"--auth", "users.json", "--cluster-key", "key"},
		{"--auth", "users.json", "--tls-cert", "n.crt", "--tls-key", "n.key", "--tls-ca", "ca.crt", "--join", "https://127.0.0.1:7070"},
	} {
		if _, err := load(t, append(append([]string{}, base...), ok...)...); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	cfg, err := load(t, base...)
	if err != nil || cfg.MaxConns != defaultMaxConns {
		t.Errorf("default --max-conns: %d, %v", cfg.MaxConns, err)
	}
	file := filepath.Join(dir, "tally.yaml")
	yaml := "id: n1\ntls-cert: n.crt\ntls-key: n.key\ntls-ca: ca.crt\ncluster-key: k\nauth: users.json\ninsecure: true\nmax-conns: 10\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = load(t, "--config", file, "--max-conns", "20")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCert != "n.crt" || cfg.TLSKey != "n.key" || cfg.TLSCA != "ca.crt" || cfg.ClusterKey != "k" || cfg.Auth != "users.json" || !cfg.Insecure || cfg.MaxConns != 20 {
		t.Errorf("from the file: %+v", cfg)
	}
}

// TestHTTPServer_Limits: a request that outlasts the write timeout is cut; a subscription
// stream is not, by the write or the read timeout.
func TestHTTPServer_Limits(t *testing.T) {
	const limit = 300 * time.Millisecond
	h := http.NewServeMux()
	h.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * limit)
		io.WriteString(w, "late\n")
	})
	h.HandleFunc("GET /v1/streams/S/subscribe", func(w http.ResponseWriter, r *http.Request) {
		for i := range 8 {
			if _, err := fmt.Fprintf(w, "event %d\n", i); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				io.WriteString(w, "cancelled\n")
				return
			case <-time.After(limit / 3):
			}
		}
	})
	srv := newHTTPServer(h, slog.New(slog.DiscardHandler), httpLimits{readHeader: limit, read: limit, write: limit, idle: limit, maxHeaderBytes: 4 << 10})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}

	if resp, err := client.Get(base + "/slow"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "late") {
			t.Errorf("a request past the write timeout was answered: %q", b)
		}
	}
	resp, err := client.Get(base + "/v1/streams/S/subscribe")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 8 || lines[7] != "event 7" {
		t.Errorf("subscription got %q (%v), want 8 events", lines, sc.Err())
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/streams/S/subscribe", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 64<<10))
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("headers over the limit: %d", resp.StatusCode)
		}
	}
}

// syncLog is a serve log shown when the test fails.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs serve in-process with args until the test ends.
func startServe(t *testing.T, args ...string) (cfg serveConfig, log *syncLog) {
	t.Helper()
	cfg, err := load(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	log = &syncLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(log, nil)).With("node", cfg.ID)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("serve %s did not stop", cfg.ID)
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", cfg.ID, log.String())
		}
	})
	return cfg, log
}

// TestServe_MutualTLS: two nodes with --tls-cert/--tls-key/--tls-ca on loopback. The
// second joins through https:// (the join and groups requests with its node certificate),
// Raft replicates over mutual TLS, the API answers HTTPS to a client with the CA (tally
// status --ca), plain HTTP gets no answer from it, and a rotated certificate is served
// without a restart.
func TestServe_MutualTLS(t *testing.T) {
	dir := t.TempDir()
	certs := certtest.New(t, filepath.Join(dir, "ca"), "n1", "n2")
	store := "sqlite://" + filepath.Join(dir, "store.db")
	node := func(id string, more ...string) []string {
		p := certs.Pairs[id]
		return append([]string{"--id", id, "--data-dir", filepath.Join(dir, id), "--store-dsn", store, "--log-level", "warn",
			"--http-addr", freeAddr(t), "--raft-addr", freeAddr(t),
			"--tls-cert", p.Cert, "--tls-key", p.Key, "--tls-ca", certs.CA}, more...)
	}
	n1, _ := startServe(t, node("n1", "--bootstrap")...)
	n2, log2 := startServe(t, node("n2", "--join", "https://"+n1.HTTPAddr)...)

	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, errOut := tally(t, "status", "--addr", "https://"+n2.HTTPAddr, "--ca", certs.CA, "--timeout", "2s")
		if code == 0 && strings.Contains(out, "n1,n2") && strings.Contains(out, "follower") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n2 never showed both members over HTTPS: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(log2.String(), "refusing a raft port connection") {
		t.Errorf("a node refused the other's Raft connection:\n%s", log2.String())
	}
	// Without the CA the client does not trust the node, and says what to do. (It loads the
	// system's roots first, which takes a while on a busy machine.)
	if code, _, errOut := tally(t, "status", "--addr", "https://"+n1.HTTPAddr, "--timeout", "15s"); code == 0 || !strings.Contains(errOut, "--ca") {
		t.Errorf("status without --ca: exit %d, %s", code, errOut)
	}
	// Plain HTTP to the HTTPS port gets no API answer.
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + n1.HTTPAddr + "/healthz")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), `"ok"`) {
			t.Errorf("plain HTTP was answered: %d %s", resp.StatusCode, b)
		}
	}
	// A rotated certificate is served without a restart.
	rotated := certtest.Serial(t, certs.Issue(t, "n1").Cert)
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := tls.Dial("tcp", n1.HTTPAddr, &tls.Config{RootCAs: caPool(t, certs.CA)})
		if err == nil {
			got := conn.ConnectionState().PeerCertificates[0].SerialNumber
			conn.Close()
			if got.Cmp(rotated) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 still serves the old certificate (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A client with a certificate from another CA is refused at the handshake.
	other := certtest.New(t, filepath.Join(dir, "other"), "x")
	x, err := security.Load(security.Files{Cert: other.Pairs["x"].Cert, Key: other.Pairs["x"].Key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc := x.ClientConfig()
	cc.RootCAs = caPool(t, certs.CA)
	stranger := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: cc}}
	if resp, err := stranger.Get("https://" + n1.HTTPAddr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a client certificate from another CA was answered: %d", resp.StatusCode)
	}
}

func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}

// TestServe_NodeClientCredentials: with a cluster key, the join and cluster-shape requests
// of tally serve carry the key's header; over HTTPS they present the node certificate.
func TestServe_NodeClientCredentials(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certs := certtest.New(t, filepath.Join(dir, "ca"), "n1", "n2")
	cfg := serveConfig{TLSCert: certs.Pairs["n2"].Cert, TLSKey: certs.Pairs["n2"].Key, TLSCA: certs.CA, ClusterKey: keyFile}
	sec, err := loadTransport(cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var proven []bool
	n1, err := security.Load(security.Files{Cert: certs.Pairs["n1"].Cert, Key: certs.Pairs["n1"].Key, CA: certs.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proven = append(proven, security.IsNode(r) && sec.key.Valid(r))
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/cluster/status":
			io.WriteString(w, `{"id":"n1","groups":[{"id":0},{"id":1}]}`)
		default:
			io.WriteString(w, `{"status":"joined"}`)
		}
	}))
	api.TLS = n1.ServerConfig()
	api.StartTLS()
	defer api.Close()
	cfg.ID, cfg.Join = "n2", []string{api.URL}
	logger := slog.New(slog.DiscardHandler)
	if n, err := node.GroupsOf(t.Context(), sec.client(5*time.Second), cfg.Join, logger); err != nil || n != 2 {
		t.Fatalf("groupsOf over HTTPS: %d, %v", n, err)
	}
	jr := httpapi.JoinRequest{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr}
	if err := node.Join(t.Context(), sec.client(5*time.Second), cfg.Join, jr, logger); err != nil {
		t.Fatalf("join over HTTPS: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(proven) != 2 || !proven[0] || !proven[1] {
		t.Errorf("requests proven to come from a node: %v, want [true true]", proven)
	}
}

// TestClient_CAAndUser: the client commands verify an https:// node with --ca and send
// --user (or TALLY_USER) as Basic auth on every request.
func TestClient_CAAndUser(t *testing.T) {
	dir := t.TempDir()
	certs := certtest.New(t, filepath.Join(dir, "ca"), "n1")
	n1, err := security.Load(security.Files{Cert: certs.Pairs["n1"].Cert, Key: certs.Pairs["n1"].Key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var users []string
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		users = append(users, u+":"+p)
		mu.Unlock()
		if u == "" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"credentials required"}`)
			return
		}
		io.WriteString(w, `{"id":"n1","groups":[]}`)
	}))
	api.TLS = n1.ServerConfig()
	api.StartTLS()
	defer api.Close()

	if code, out, errOut := tally(t, "status", "--addr", api.URL, "--ca", certs.CA, "--user", "ann:s3:cret"); code != 0 || !strings.Contains(out, "node n1") {
		t.Fatalf("status with --ca and --user: exit %d %s %s", code, out, errOut)
	}
	t.Setenv("TALLY_USER", "bob:pw")
	t.Setenv("TALLY_CA", certs.CA)
	if code, _, errOut := tally(t, "status", "--addr", api.URL); code != 0 {
		t.Fatalf("status with TALLY_USER and TALLY_CA: exit %d %s", code, errOut)
	}
	t.Setenv("TALLY_USER", "")
	if code, _, errOut := tally(t, "status", "--addr", api.URL); code != 1 || !strings.Contains(errOut, "--user") {
		t.Errorf("no credentials: exit %d %s", code, errOut)
	}
	if code, _, errOut := tally(t, "status", "--addr", api.URL, "--user", "nopassword"); code != 1 || !strings.Contains(errOut, "USER:PASSWORD") {
		t.Errorf("--user without a colon: exit %d %s", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	// status asks for the status, then the cluster map, with the same credentials.
	if want := []string{"ann:s3:cret", "ann:s3:cret", "bob:pw", "bob:pw", ":"}; strings.Join(users, " ") != strings.Join(want, " ") {
		t.Errorf("credentials received %q, want %q", users, want)
	}
}
