package client_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// fakeNode answers every request with status and an API error body.
func fakeNode(t *testing.T, status int, header http.Header, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestTypedErrors(t *testing.T) {
	sentinels := []error{client.ErrUnavailable, client.ErrBadRequest, client.ErrUnauthorized, client.ErrForbidden, client.ErrTooManyRequests}
	cases := []struct {
		status     int
		want       error
		retryAfter time.Duration
	}{
		{http.StatusBadRequest, client.ErrBadRequest, 0},
		{http.StatusNotFound, client.ErrBadRequest, 0},
		{http.StatusConflict, client.ErrBadRequest, 0},
		{http.StatusRequestEntityTooLarge, client.ErrBadRequest, 0},
		{http.StatusUnauthorized, client.ErrUnauthorized, 0},
		{http.StatusForbidden, client.ErrForbidden, 0},
		{http.StatusTooManyRequests, client.ErrTooManyRequests, 3 * time.Second},
		{http.StatusServiceUnavailable, client.ErrUnavailable, 2 * time.Second},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			h := http.Header{}
			if tc.retryAfter > 0 {
				h.Set("Retry-After", fmt.Sprint(int(tc.retryAfter.Seconds())))
			}
			msg := fmt.Sprintf("the server says %d", tc.status)
			srv := fakeNode(t, tc.status, h, fmt.Sprintf(`{"error":%q}`, msg))
			c, err := client.New([]string{srv.URL}, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Apps(ctx)
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Message != msg {
				t.Fatalf("error %v: want an *APIError with status %d and message %q", err, tc.status, msg)
			}
			if ra, ok := client.RetryAfter(err); ra != tc.retryAfter || ok != (tc.retryAfter > 0) {
				t.Errorf("RetryAfter = %v, %v; want %v", ra, ok, tc.retryAfter)
			}
		})
	}
}

// TestQueryErrorMessage reads the store API's own error shape.
func TestQueryErrorMessage(t *testing.T) {
	srv := fakeNode(t, http.StatusNotFound, nil, `{"type":"error","message":"Cannot find an active SiddhiApp with name: X"}`)
	c, err := client.New([]string{srv.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Query(context.Background(), "X", "from A within 0L, 1L per 'sec' select *", client.QueryOptions{})
	var ae *client.APIError
	if !errors.Is(err, client.ErrBadRequest) || !errors.As(err, &ae) || ae.Message != "Cannot find an active SiddhiApp with name: X" {
		t.Fatalf("query error %v: want ErrBadRequest with the server's message", err)
	}
}

// TestNoNodeAnswers: every node down is ErrUnavailable naming the last failure.
func TestNoNodeAnswers(t *testing.T) {
	var addrs []string
	for range 2 {
		s := httptest.NewServer(http.NotFoundHandler())
		addrs = append(addrs, s.URL)
		s.Close()
	}
	c, err := client.New(addrs, client.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("status with every node down: %v, want ErrUnavailable saying why", err)
	}
	if errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("%v matches ErrBadRequest", err)
	}
}

// recorder is a fake node that records requests and answers with the function given.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newRecorder(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r)
		n := len(rec.reqs)
		rec.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) requests() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}

func okStatus(_ int, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"n1","groups":[{"id":0,"shard_id":"0","role":"leader","leader":{"id":"n1","http_addr":"127.0.0.1:1"},"term":3,"commit_index":9,"applied_index":9,"last_index":9,"lag":0,"members":[{"id":"n1","raft_addr":"127.0.0.1:2","voter":true},{"id":"n2","raft_addr":"127.0.0.1:3","voter":false}]}]}`)
}

// TestRoundRobinAndFailover: requests alternate over the nodes; a node answering 503 is
// skipped for the next.
func TestRoundRobinAndFailover(t *testing.T) {
	a, b := newRecorder(t, okStatus), newRecorder(t, okStatus)
	c, err := client.New([]string{a.URL, b.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 4 {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ID != "n1" || st.Groups[0].Leader.ID != "n1" || st.Groups[0].Term != 3 || len(st.Voters(0)) != 1 || st.Groups[0].Members[1].Voter {
			t.Fatalf("status decoded as %+v", st)
		}
	}
	if len(a.requests()) != 2 || len(b.requests()) != 2 {
		t.Fatalf("4 requests went %d and %d to the two nodes, want 2 each", len(a.requests()), len(b.requests()))
	}
	down := fakeNode(t, http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}}, `{"error":"no leader"}`)
	c, err = client.New([]string{down.URL, a.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Status(ctx); err != nil {
			t.Fatalf("status with one node answering 503: %v", err)
		}
	}
	// A refusal is final: no other node is asked.
	bad := fakeNode(t, http.StatusBadRequest, nil, `{"error":"bad"}`)
	before := len(a.requests())
	c, err = client.New([]string{bad.URL, a.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deploy(ctx, "x"); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("deploy: %v", err)
	}
	if n := len(a.requests()) - before; n != 0 {
		t.Fatalf("a 400 was retried on another node (%d requests)", n)
	}
}

func TestCredentials(t *testing.T) {
	rec := newRecorder(t, okStatus)
	ctx := context.Background()
	basic, err := client.New([]string{rec.URL}, client.Options{User: "ann", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := client.New([]string{rec.URL}, client.Options{Token: "tok-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{basic, bearer} {
		if _, err := c.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reqs := rec.requests()
	if u, p, ok := reqs[0].BasicAuth(); !ok || u != "ann" || p != "s3cret" {
		t.Errorf("basic auth sent %q %q %v", u, p, ok)
	}
	if got := reqs[1].Header.Get("Authorization"); got != "Bearer tok-1" {
		t.Errorf("bearer sent Authorization %q", got)
	}
	var used atomic.Int64
	own := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := client.New([]string{rec.URL}, client.Options{HTTPClient: own})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err != nil || used.Load() != 1 {
		t.Errorf("status through Options.HTTPClient: %v, %d requests through it", err, used.Load())
	}
	bad := []client.Options{
		{User: "ann", Token: "t"},
		{Password: "p"},
		{CAFile: "/nonexistent/ca.pem"},
		{Timeout: -time.Second},
	}
	for _, o := range bad {
		if _, err := client.New([]string{rec.URL}, o); err == nil {
			t.Errorf("New with %+v succeeded", o)
		}
	}
	for _, addrs := range [][]string{nil, {""}, {"ftp://x"}} {
		if _, err := client.New(addrs, client.Options{}); err == nil {
			t.Errorf("New(%q) succeeded", addrs)
		}
	}
}

// TestPublisherRetriesWithTheSameSeq: a batch answered 503, then lost to a dead node, is
// sent again with the same Producer-Seq; the next batch has the next seq.
func TestPublisherRetriesWithTheSameSeq(t *testing.T) {
	rec := newRecorder(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"no leader"}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"group":0,"index":%d,"events":2,"duplicate":%v}`, 10+n, n == 3)
	})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c, err := client.New([]string{rec.URL, dead.URL}, client.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.Publisher("S", client.PublisherOptions{ProducerID: "me", MaxBatch: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := p.Add(ctx, map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, r := range rec.requests() {
		if r.Header.Get("Producer-Id") != "me" || r.URL.Path != "/v1/streams/S/events" {
			t.Fatalf("request %s %s with Producer-Id %q", r.Method, r.URL, r.Header.Get("Producer-Id"))
		}
		body, _ := io.ReadAll(r.Body)
		if strings.Count(string(body), "\n") != 2 {
			t.Errorf("batch body %q: want 2 NDJSON lines", body)
		}
		seqs = append(seqs, r.Header.Get("Producer-Seq"))
	}
	if got := strings.Join(seqs, ","); got != "1,1,2" {
		t.Fatalf("seqs sent %s, want 1,1,2 (batch 1 retried after a 503 and the dead node)", got)
	}
	st := p.Stats()
	if st.Events != 2 || st.Duplicates != 2 || st.Batches != 2 || st.Retries < 2 {
		t.Errorf("stats %+v", st)
	}
	if ix := p.Indexes(); ix[0] != 13 || ix.String() != "0:13" {
		t.Errorf("indexes %v", ix)
	}
}

// TestPublisherStopsOnRefusal: a 400 is final; later calls report it.
func TestPublisherStopsOnRefusal(t *testing.T) {
	srv := fakeNode(t, http.StatusBadRequest, nil, `{"error":"event 1: attribute price: want a number","event":1,"field":"price"}`)
	c, err := client.New([]string{srv.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.Publisher("S", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Add(ctx, []byte(`{"price":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(ctx, []byte("{\n  \"price\": \"x\"\n}")); err != nil {
		t.Fatal(err)
	}
	err = p.Flush(ctx)
	var be *client.BatchError
	var ae *client.APIError
	if !errors.As(err, &be) || be.Seq != 1 || be.Events != 2 || !errors.As(err, &ae) || ae.Event == nil || *ae.Event != 1 || ae.Field != "price" || !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("flush: %v; want a BatchError of seq 1 with the server's event and field", err)
	}
	if err := p.Add(ctx, []byte(`{"price":2}`)); !errors.As(err, &be) {
		t.Errorf("Add after a refusal: %v", err)
	}
	if err := p.Close(ctx); !errors.As(err, &be) {
		t.Errorf("Close after a refusal: %v", err)
	}
	for _, ev := range []any{[]byte(`[1]`), []byte(`{`), 42, notObject{}} {
		if err := p.Add(ctx, ev); err == nil {
			t.Errorf("Add(%v) accepted a non-object", ev)
		}
	}
}

// notObject is a type whose JSON is not an object.
type notObject struct{}

func (notObject) MarshalJSON() ([]byte, error) { return []byte(`"s"`), nil }

// TestHTTPSWithCAFile: a node whose certificate the CA file signs is trusted, and only then.
func TestHTTPSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { okStatus(0, w, r) }))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := client.New([]string{srv.URL}, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status over HTTPS with the CA: %v", err)
	}
	c, err = client.New([]string{srv.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("status over HTTPS without the CA: %v, want a certificate error", err)
	}
	if _, err := client.New([]string{srv.URL}, client.Options{CAFile: ca, TLS: &tls.Config{}}); err == nil {
		t.Error("New with TLS and CAFile succeeded")
	}
}

// TestPublisherIndexesOfParts: with several groups an answer lists every group's part; the
// publisher keeps the highest index of each.
func TestPublisherIndexesOfParts(t *testing.T) {
	rec := newRecorder(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, `{"group":0,"index":%d,"events":2,"parts":[{"group":0,"index":%d,"events":1,"status":200},{"group":2,"index":%d,"events":1,"status":200}]}`,
			10*n, 10*n, 100-n)
	})
	c, err := client.New([]string{rec.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.Publisher("S", client.PublisherOptions{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := p.Add(ctx, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ix := p.Indexes(); len(ix) != 2 || ix[0] != 20 || ix[2] != 99 || ix.String() != "0:20,2:99" {
		t.Fatalf("indexes %v, want 0:20,2:99", ix)
	}
}

// roundTripper is an http.RoundTripper made of a function.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
