package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// TestCallReturnsTheBodyAsSent: Call passes method, path, query, body and content type
// through, returns the node's body byte for byte, and fails over past a 503.
func TestCallReturnsTheBodyAsSent(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %s?%s %s", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type")))
		mu.Unlock()
		fmt.Fprint(w, `{"b": 1,  "a":[2.50]}`)
	}))
	defer ok.Close()
	busy := fakeNode(t, http.StatusServiceUnavailable, nil, `{"error":"no leader"}`)
	c, err := client.New([]string{busy.URL, ok.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := c.Call(ctx, http.MethodPost, "/stores/query", url.Values{"consistency": {"stale"}}, "application/json", []byte(`{}`))
	if err != nil || string(body) != `{"b": 1,  "a":[2.50]}` {
		t.Fatalf("Call = %q, %v", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "POST /stores/query?consistency=stale application/json" {
		t.Errorf("requests %q", got)
	}

	// A refusal is an *APIError with the server's message.
	bad := fakeNode(t, http.StatusBadRequest, nil, `{"error":"no such group 7"}`)
	cb, _ := client.New([]string{bad.URL}, client.Options{})
	var ae *client.APIError
	if _, err := cb.Call(ctx, http.MethodGet, "/v1/cluster/status", nil, "", nil); !errors.As(err, &ae) || ae.Message != "no such group 7" {
		t.Errorf("refused Call: %v", err)
	}
}

// TestTransfer sends the group and the target voter and reads the new leader.
func TestTransfer(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/cluster/transfer" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		query = r.URL.RawQuery
		fmt.Fprint(w, `{"group":1,"leader":"n3"}`)
	}))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{})
	res, err := c.Transfer(context.Background(), 1, "n3")
	if err != nil || *res != (client.TransferResult{Group: 1, Leader: "n3"}) || query != "group=1&to=n3" {
		t.Fatalf("Transfer = %+v, %v (query %q)", res, err, query)
	}
	if _, err := c.Transfer(context.Background(), -1, ""); err != nil || query != "" {
		t.Errorf("Transfer without group and voter: %v, query %q", err, query)
	}
}

// TestRetryAfterZero: a Retry-After of 0 is told apart from none.
func TestRetryAfterZero(t *testing.T) {
	for _, h := range []string{"0", ""} {
		hdr := http.Header{}
		if h != "" {
			hdr.Set("Retry-After", h)
		}
		srv := fakeNode(t, http.StatusServiceUnavailable, hdr, `{"error":"busy"}`)
		c, _ := client.New([]string{srv.URL}, client.Options{})
		_, err := c.Apps(context.Background())
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.HasRetryAfter != (h != "") || ae.RetryAfter != 0 {
			t.Errorf("Retry-After %q: %+v", h, ae)
		}
	}
}

// TestOutputRaw: an output keeps the data line as the server sent it.
func TestOutputRaw(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 0-5-0\nevent: output\ndata: {\"id\":\"0-5-0\", \"data\":{\"n\":1}}\n\n")
	}))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, "S", "0-4-0")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	out, err := sub.Next(ctx)
	if err != nil || string(out.Raw) != `{"id":"0-5-0", "data":{"n":1}}` || out.ID != "0-5-0" || string(out.Data) != `{"n":1}` {
		t.Fatalf("Next = %+v (raw %s), %v", out, out.Raw, err)
	}
}

// TestIngestNDJSON sends the body as it is, with the producer's headers.
func TestIngestNDJSON(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = fmt.Sprintf("%s %s %s %s %s", r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Producer-Id"), r.Header.Get("Producer-Seq"), b)
		fmt.Fprint(w, `{"group":0,"index":9,"events":2,"duplicate":true}`)
	}))
	defer srv.Close()
	c, _ := client.New([]string{srv.URL}, client.Options{})
	res, err := c.IngestNDJSON(context.Background(), "S", []byte("{\"a\": 1}\n{\"a\":2}\n"), client.IngestOptions{ProducerID: "p", Seq: 4})
	if err != nil || !res.Duplicate || res.Index != 9 || got != "/v1/streams/S/events application/x-ndjson p 4 {\"a\": 1}\n{\"a\":2}\n" {
		t.Fatalf("IngestNDJSON = %+v, %v; the node got %q", res, err, got)
	}
	if _, err := c.IngestNDJSON(context.Background(), "S", []byte("{}\n"), client.IngestOptions{ProducerID: "p"}); err == nil {
		t.Error("a producer without a seq was sent")
	}
}

// TestMaxIdleConnsPerNode: the connections of a round of concurrent requests are kept for
// the next round, so it dials no new ones.
func TestMaxIdleConnsPerNode(t *testing.T) {
	const n = 40 // more than the default 32
	var mu sync.Mutex
	active, dialed := 0, 0
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		active++
		ch := release
		mu.Unlock()
		<-ch
		mu.Lock()
		active--
		mu.Unlock()
		fmt.Fprint(w, `{"apps":[]}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			dialed++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := client.New([]string{srv.URL}, client.Options{MaxIdleConnsPerNode: n})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	round := func() {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Apps(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			mu.Lock()
			all := active == n
			mu.Unlock()
			if all || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		close(release)
		release = make(chan struct{})
		mu.Unlock()
		wg.Wait()
	}
	round()
	round()
	mu.Lock()
	defer mu.Unlock()
	if dialed != n {
		t.Errorf("%d connections for two rounds of %d concurrent requests, want %d (the first round's kept)", dialed, n, n)
	}
}
