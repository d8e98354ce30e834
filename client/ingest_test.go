package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// TestIngestIsIdempotentWithAProducer sends one request twice with the same producer and
// seq: the second is a duplicate and the events are counted once.
func TestIngestIsIdempotentWithAProducer(t *testing.T) {
	c := sharedNode(t)
	cl, err := client.New(c.urls(), client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, cl, "Ing")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	events := []any{trade{Symbol: "i", Quantity: 5, Timestamp: ts}, []byte(`{"symbol":"i","quantity":7,"timestamp":1514783400000}`)}
	opts := client.IngestOptions{ProducerID: "ingest-test", Seq: 1}
	first, err := cl.Ingest(ctx, "IngTrades", events, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cl.Ingest(ctx, "IngTrades", events, opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || first.Events != 2 || !again.Duplicate {
		t.Fatalf("first %+v, again %+v: want 2 events applied, then a duplicate", first, again)
	}
	plain, err := cl.Ingest(ctx, "IngTrades", events[:1], client.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := totals(ctx, cl, "Ing", client.QueryOptions{MinIndex: plain.Indexes(), Consistency: client.Stale})
	if err != nil {
		t.Fatal(err)
	}
	if want := [2]int64{17, 3}; got["i"] != want {
		t.Errorf("total, count = %v, want %v", got["i"], want)
	}
	if _, err := cl.Ingest(ctx, "IngTrades", events, client.IngestOptions{ProducerID: "x"}); err == nil {
		t.Error("ProducerID without Seq accepted")
	}
	_, err = cl.Ingest(ctx, "IngTrades", []any{[]byte(`{"symbol":"i","quantity":"many","timestamp":1}`)}, client.IngestOptions{})
	var ae *client.APIError
	if !errors.Is(err, client.ErrBadRequest) || !errors.As(err, &ae) || ae.Event == nil || *ae.Event != 0 || ae.Field != "quantity" {
		t.Fatalf("bad event: %v; want ErrBadRequest naming event 0 and field quantity", err)
	}
	if _, err := cl.Ingest(ctx, "NoSuchStream", events, client.IngestOptions{}); !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "unknown stream") {
		t.Fatalf("unknown stream: %v", err)
	}
	if _, err := cl.SubscribeGroup(ctx, "IngOut", 5, ""); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("subscribe to group 5 of a one-group cluster: %v, want ErrBadRequest", err)
	}
	sub, err := cl.SubscribeGroup(ctx, "IngOut", 0, "earliest")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if out, err := sub.Next(ctx); err != nil || !strings.HasPrefix(out.ID, "0-") || !strings.Contains(string(out.Data), `"quantity":5`) {
		t.Fatalf("first output of group 0: %+v, %v", out, err)
	}
}

// TestUnreachableNodeIsPassedOver: after a node drops a request, round robin leaves it out
// for a while instead of trying it every other request.
func TestUnreachableNodeIsPassedOver(t *testing.T) {
	var drops atomic.Int64
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drops.Add(1)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	defer dropper.Close()
	live := newRecorder(t, okStatus)
	c, err := client.New([]string{dropper.URL, live.URL}, client.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := drops.Load(); n != 1 {
		t.Fatalf("the dropping node got %d of 6 requests, want 1", n)
	}
}

// TestPublisherFirstSeq starts a producer's seqs where asked.
func TestPublisherFirstSeq(t *testing.T) {
	rec := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"group":0,"index":3,"events":1}`)
	})
	c, err := client.New([]string{rec.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.Publisher("S", client.PublisherOptions{ProducerID: "cli", FirstSeq: 7, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Add(ctx, map[string]int{"a": 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, r := range rec.requests() {
		seqs = append(seqs, r.Header.Get("Producer-Seq"))
	}
	if got := strings.Join(seqs, ","); got != "7,8" {
		t.Fatalf("seqs %s, want 7,8", got)
	}
}

// TestRefusedBatchIsNotResent: a batch the cluster refused for its contents is not sent
// again by the next publisher on the same state file, which goes on with the next seq.
func TestRefusedBatchIsNotResent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state := filepath.Join(t.TempDir(), "state.json")
	bad := fakeNode(t, http.StatusBadRequest, nil, `{"error":"event 0: no attribute x"}`)
	c, err := client.New([]string{bad.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Publisher("S", client.PublisherOptions{StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Add(ctx, []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("close: %v, want the refusal", err)
	}
	rec := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"group":0,"index":3,"events":1}`)
	})
	c, err = client.New([]string{rec.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err = c.Publisher("S", client.PublisherOptions{StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Add(ctx, []byte(`{"y":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want one", len(reqs))
	}
	if seq := reqs[0].Header.Get("Producer-Seq"); seq != "2" {
		t.Fatalf("sent seq %q, want 2", seq)
	}
	if body, _ := io.ReadAll(reqs[0].Body); string(body) != "{\"y\":1}\n" {
		t.Fatalf("sent %q", body)
	}
}

// TestOnePublisherPerStateFile: a second publisher on an open state file fails; once the
// first is closed, another may take it.
func TestOnePublisherPerStateFile(t *testing.T) {
	rec := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"group":0,"index":3,"events":1}`)
	})
	c, err := client.New([]string{rec.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state := filepath.Join(t.TempDir(), "state.json")
	first, err := c.Publisher("S", client.PublisherOptions{StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publisher("S", client.PublisherOptions{StatePath: state}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second publisher on an open state file: %v", err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	next, err := c.Publisher("S", client.PublisherOptions{StatePath: state})
	if err != nil {
		t.Fatalf("publisher after Close: %v", err)
	}
	if next.ProducerID() != first.ProducerID() {
		t.Errorf("producer %q after a restart, want %q", next.ProducerID(), first.ProducerID())
	}
	if err := next.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIngestWithoutProducerIsNotResent: a request that may have been applied is sent
// again on another node only when a producer makes that safe.
func TestIngestWithoutProducerIsNotResent(t *testing.T) {
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	defer dropper.Close()
	live := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"group":0,"index":3,"events":1}`)
	})
	ctx := context.Background()
	ev := []any{map[string]int{"a": 1}}
	c, err := client.New([]string{dropper.URL, live.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ingest(ctx, "S", ev, client.IngestOptions{}); err == nil || len(live.requests()) != 0 {
		t.Fatalf("ingest without a producer to a node that dropped it: %v, %d requests to the other node; want an error and none", err, len(live.requests()))
	}
	c, err = client.New([]string{dropper.URL, live.URL}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ingest(ctx, "S", ev, client.IngestOptions{ProducerID: "p", Seq: 1}); err != nil || len(live.requests()) != 1 {
		t.Fatalf("ingest with a producer: %v, %d requests to the other node; want it to fail over", err, len(live.requests()))
	}
}
