package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

const ts = 1514783400000 // every test event's time: one bucket per aggregation level

// TestPublisherCountsEveryEventOnce publishes from several goroutines through one
// publisher with small batches and checks the cluster counted every event once.
func TestPublisherCountsEveryEventOnce(t *testing.T) {
	c := sharedNode(t)
	cl, err := client.New(c.urls(), client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, cl, "Pub")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := cl.Publisher("PubTrades", client.PublisherOptions{MaxBatch: 37})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 4, 250
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				if err := p.Add(ctx, trade{Symbol: fmt.Sprintf("s%d", g), Quantity: int64(i), Timestamp: ts}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Events != goroutines*each || st.Duplicates != 0 || st.Batches < goroutines*each/37 {
		t.Errorf("stats %+v: want %d events in at least %d batches, no duplicates", st, goroutines*each, goroutines*each/37)
	}
	got, err := totals(ctx, cl, "Pub", client.QueryOptions{MinIndex: p.Indexes()})
	if err != nil {
		t.Fatal(err)
	}
	for g := range goroutines {
		sym := fmt.Sprintf("s%d", g)
		if want := [2]int64{each * (each + 1) / 2, each}; got[sym] != want {
			t.Errorf("%s: total, count = %v, want %v", sym, got[sym], want)
		}
	}
	if err := p.Add(ctx, trade{Symbol: "late"}); err == nil {
		t.Error("Add after Close succeeded")
	}
}

// TestPublisherSurvivesNodeKill publishes to three nodes, round robin, and SIGKILLs the
// leader while batches are in flight: every event must be counted exactly once. A
// subscription connected to the leader must go on on another node, missing nothing.
//
// One group: with two, the survivors' leader balancing keeps handing a leadership to the
// killed voter, which stalls that group's writes for many seconds at a time.
func TestPublisherSurvivesNodeKill(t *testing.T) {
	c := newCluster(t, 3, 1)
	cl, err := client.New(c.urls(), client.Options{Timeout: 3 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, cl, "Kill")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var leader *node
	for _, nd := range c.nodes {
		if st, err := cl.NodeStatus(ctx, nd.url()); err == nil && st.Groups[0].Role == "leader" {
			leader = nd
		}
	}
	if leader == nil {
		t.Fatal("no leader found")
	}
	// A new client's first request goes to its first node: the leader.
	addrs := []string{leader.url()}
	for _, nd := range c.nodes {
		if nd != leader {
			addrs = append(addrs, nd.url())
		}
	}
	var subLog lockedBuffer
	subClient, err := client.New(addrs, client.Options{Timeout: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&subLog, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := subClient.Subscribe(ctx, "KillOut", "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 4000
	outputs := make(chan error, 1)
	go func() {
		for want := int64(1); want <= n; want++ {
			out, err := sub.Next(ctx)
			if err != nil {
				outputs <- fmt.Errorf("output %d: %w", want, err)
				return
			}
			var data struct{ Quantity int64 }
			if err := json.Unmarshal(out.Data, &data); err != nil || data.Quantity != want {
				outputs <- fmt.Errorf("output %s is %s, want quantity %d (%v): missed or repeated", out.ID, out.Data, want, err)
				return
			}
		}
		outputs <- nil
	}()
	p, err := cl.Publisher("KillTrades", client.PublisherOptions{MaxBatch: 10, Linger: time.Millisecond, Backoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			if err := p.Add(ctx, trade{Symbol: fmt.Sprintf("k%d", i%8), Quantity: int64(i), Timestamp: ts}); err != nil {
				done <- err
				return
			}
		}
		done <- p.Flush(ctx)
	}()
	if err := poll(20*time.Second, "a quarter of the events acknowledged", func() bool { return p.Stats().Events >= n/4 }); err != nil {
		t.Fatal(err)
	}
	acked := p.Stats().Events
	c.kill(leader)
	t.Logf("killed leader %s after %d events acknowledged", leader.id, acked)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	t.Logf("publisher: %+v", st)
	if acked == n {
		t.Fatal("every event was acknowledged before the kill: the test proved nothing")
	}
	if st.Events+st.Duplicates != n || st.Retries == 0 {
		t.Errorf("stats %+v: want %d events acknowledged, with retries after the kill", st, n)
	}
	var got map[string][2]int64
	if err := poll(15*time.Second, "a query answered", func() bool {
		got, err = totals(ctx, cl, "Kill", client.QueryOptions{MinIndex: p.Indexes()})
		return err == nil
	}); err != nil {
		t.Fatal(err)
	}
	var sum [2]int64
	for _, v := range got {
		sum[0], sum[1] = sum[0]+v[0], sum[1]+v[1]
	}
	if want := [2]int64{n * (n + 1) / 2, n}; sum != want || len(got) != 8 {
		t.Errorf("total, count = %v over %d symbols, want %v over 8: events lost or counted twice", sum, len(got), want)
	}
	if err := <-outputs; err != nil {
		t.Fatalf("subscription: %v", err)
	}
	if !strings.Contains(subLog.String(), "subscription dropped") {
		t.Errorf("the subscription never lost its node: the test proved nothing about it\n%s", subLog.String())
	}
}

// lockedBuffer is a bytes.Buffer for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// dropProxy passes requests to a node, except that once armed it drops the connection of
// every ingest request from the dropFrom-th on, before passing it.
type dropProxy struct {
	*httptest.Server
	ingests  atomic.Int64 // ingest requests seen
	dropped  atomic.Int64
	dropFrom int64
}

func newDropProxy(t *testing.T, target string, dropFrom int64) *dropProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	p := &dropProxy{dropFrom: dropFrom}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") && p.ingests.Add(1) >= p.dropFrom {
			p.dropped.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestPublisherResumesFromState crashes a publisher with a StatePath while a batch is in
// flight and starts another on the same file: it must resend that batch with its seq and
// go on with new seqs, so the cluster counts every event once.
func TestPublisherResumesFromState(t *testing.T) {
	c := sharedNode(t)
	direct, err := client.New(c.urls(), client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, direct, "Res")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	state := filepath.Join(t.TempDir(), "publisher.json")

	// The first publisher: batches 1 and 2 go through, batch 3 never reaches the node.
	proxy := newDropProxy(t, c.nodes[0].url(), 3)
	viaProxy, err := client.New([]string{proxy.URL}, client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	opts := client.PublisherOptions{StatePath: state, MaxBatch: 50, Linger: time.Hour, Backoff: 5 * time.Millisecond}
	a, err := viaProxy.Publisher("ResTrades", opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 150; i++ {
		if err := a.Add(ctx, trade{Symbol: "r", Quantity: int64(i), Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
	if err := poll(10*time.Second, "batch 3 dropped twice", func() bool { return proxy.dropped.Load() >= 2 }); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Batches != 2 || st.Events != 100 {
		t.Fatalf("first publisher: %+v, want 2 batches of 100 events acknowledged", st)
	}
	gone, stop := context.WithCancel(ctx)
	stop()
	if err := a.Close(gone); err == nil || !strings.Contains(err.Error(), "50 of 150 events not acknowledged") {
		t.Fatalf("Close of a publisher with a batch in flight: %v", err)
	}
	var saved struct {
		NextSeq uint64 `json:"next_seq"`
		Pending struct {
			Seq    uint64            `json:"seq"`
			Events []json.RawMessage `json:"events"`
		} `json:"pending"`
	}
	if b, err := os.ReadFile(state); err != nil || json.Unmarshal(b, &saved) != nil {
		t.Fatalf("read state: %v %s", err, b)
	}
	if saved.NextSeq != 4 || saved.Pending.Seq != 3 || len(saved.Pending.Events) != 50 {
		t.Fatalf("state after the crash: next_seq %d, pending seq %d with %d events; want 4, 3 with 50", saved.NextSeq, saved.Pending.Seq, len(saved.Pending.Events))
	}

	// The restarted publisher, on the same file, straight to the node.
	b, err := direct.Publisher("ResTrades", client.PublisherOptions{StatePath: state, MaxBatch: 50})
	if err != nil {
		t.Fatal(err)
	}
	if b.ProducerID() != a.ProducerID() {
		t.Fatalf("restarted publisher is producer %q, want %q", b.ProducerID(), a.ProducerID())
	}
	for i := 151; i <= 250; i++ {
		if err := b.Add(ctx, trade{Symbol: "r", Quantity: int64(i), Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Events != 150 || st.Duplicates != 0 {
		t.Errorf("restarted publisher: %+v, want 150 events applied (the recovered batch and 100 new), none duplicate", st)
	}
	got, err := totals(ctx, direct, "Res", client.QueryOptions{MinIndex: b.Indexes()})
	if err != nil {
		t.Fatal(err)
	}
	if want := [2]int64{250 * 251 / 2, 250}; got["r"] != want {
		t.Errorf("total, count = %v, want %v", got["r"], want)
	}

	// A third publisher on the file of a cleanly closed one has nothing to resend.
	c3, err := direct.Publisher("ResTrades", client.PublisherOptions{StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := c3.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c3.Stats(); st.Batches != 0 {
		t.Errorf("publisher on a clean state sent %d batches", st.Batches)
	}
	if _, err := direct.Publisher("OtherStream", client.PublisherOptions{StatePath: state}); err == nil || !strings.Contains(err.Error(), `stream "ResTrades"`) {
		t.Errorf("state of another stream: %v", err)
	}
}

// testLogger logs to t.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
