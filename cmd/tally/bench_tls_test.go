package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tally-db/tally/internal/certtest"
	"github.com/tally-db/tally/security"
)

// TestBenchTLSAndUser: tally bench reaches an https:// node verified with --ca and sends
// --user (or TALLY_USER) as Basic auth on every request, the stream check and the batches
// alike; without the CA or with wrong credentials it stops before sending a batch, saying
// which flag is missing.
func TestBenchTLSAndUser(t *testing.T) {
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "n1")
	n1, err := security.Load(security.Files{Cert: certs.Pairs["n1"].Cert, Key: certs.Pairs["n1"].Key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ method, creds string }
	var (
		mu   sync.Mutex
		reqs []seen
	)
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		reqs = append(reqs, seen{r.Method, u + ":" + p})
		mu.Unlock()
		if r.TLS == nil || (u+":"+p != "bench:s3:cret" && u+":"+p != "env:pw") {
			w.Header().Set("WWW-Authenticate", `Basic realm="tally"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"credentials required"}`)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/v1/apps":
			io.WriteString(w, benchApps)
		case r.Method == "POST" && r.URL.Path == "/v1/streams/TradeStream/events":
			body, _ := io.ReadAll(r.Body)
			ack(w, benchReq{body: string(body)})
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"no such endpoint"}`)
		}
	}))
	api.TLS = n1.ServerConfig()
	api.StartTLS()
	defer api.Close()
	// taken returns and clears what the server saw: the requests by method, and the
	// distinct credentials.
	taken := func() (map[string]int, []string) {
		mu.Lock()
		defer mu.Unlock()
		methods, creds := map[string]int{}, map[string]bool{}
		for _, r := range reqs {
			methods[r.method]++
			creds[r.creds] = true
		}
		reqs = nil
		var cs []string
		for c := range creds {
			cs = append(cs, c)
		}
		return methods, cs
	}
	args := []string{"bench", "--addr", api.URL, "--duration", "200ms", "--clients", "2", "--events-per-request", "3", "--json"}

	t.Setenv("TALLY_USER", "")
	t.Setenv("TALLY_CA", "")
	code, out, errOut := tally(t, append(args, "--ca", certs.CA, "--user", "bench:s3:cret")...)
	var sum benchSummary
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil || sum.Events == 0 || sum.Errors != 0 {
		t.Fatalf("bench over HTTPS with --ca and --user: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	methods, creds := taken()
	if methods["GET"] != 1 || int64(methods["POST"]) != sum.Requests || len(creds) != 1 || creds[0] != "bench:s3:cret" {
		t.Errorf("server saw %v with credentials %q, want 1 GET and %d POSTs all as bench:s3:cret", methods, creds, sum.Requests)
	}

	t.Setenv("TALLY_USER", "env:pw")
	if code, out, errOut := tally(t, append(args, "--ca", certs.CA)...); code != 0 {
		t.Fatalf("bench with TALLY_USER: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if methods, creds := taken(); methods["POST"] == 0 || len(creds) != 1 || creds[0] != "env:pw" {
		t.Errorf("with TALLY_USER the server saw %v with credentials %q, want POSTs as env:pw", methods, creds)
	}

	t.Setenv("TALLY_USER", "")
	for _, c := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"no CA", []string{"--user", "bench:s3:cret"}, "--ca or TALLY_CA"},
		{"no user", []string{"--ca", certs.CA}, "--user USER:PASSWORD or TALLY_USER"},
		{"wrong password", []string{"--ca", certs.CA, "--user", "bench:nope"}, "HTTP 401"},
		{"user without a password", []string{"--ca", certs.CA, "--user", "bench"}, "must be USER:PASSWORD"},
	} {
		code, _, errOut := tally(t, append(args, c.extra...)...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want exit 1 naming %q", c.name, code, errOut, c.want)
		}
		if methods, _ := taken(); methods["POST"] != 0 {
			t.Errorf("%s: %d batches sent", c.name, methods["POST"])
		}
	}
}
