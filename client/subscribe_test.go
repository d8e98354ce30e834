package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// TestSubscribeResumesAcrossDisconnects reads a window query's outputs through a proxy
// that drops every connection now and then: the subscription must reconnect from the last
// output it returned and deliver every output once, in order.
func TestSubscribeResumesAcrossDisconnects(t *testing.T) {
	c := sharedNode(t)
	direct, err := client.New(c.urls(), client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, direct, "Sub")
	u, _ := url.Parse(c.nodes[0].url())
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	viaProxy, err := client.New([]string{proxy.URL}, client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Only outputs after subscribing: none of them may be missed either.
	sub, err := viaProxy.Subscribe(ctx, "SubOut", "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const n = 300
	p, err := direct.Publisher("SubTrades", client.PublisherOptions{MaxBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	// Drop the connection before any output: the reconnection must start where the first
	// connection did, not at the newest output.
	proxy.CloseClientConnections()
	for i := 1; i <= n; i++ {
		if err := p.Add(ctx, trade{Symbol: "x", Quantity: int64(i), Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var lastPos [2]uint64
	for want := int64(1); want <= n; want++ {
		out, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("output %d: %v", want, err)
		}
		var data struct {
			Symbol   string `json:"symbol"`
			Quantity int64  `json:"quantity"`
			Recent   int64  `json:"recent"`
		}
		if err := json.Unmarshal(out.Data, &data); err != nil {
			t.Fatalf("output %s: %v: %s", out.ID, err, out.Data)
		}
		wantRecent := want + max(want-1, 0) + max(want-2, 0) // the window holds the last 3
		if data.Quantity != want || data.Recent != wantRecent || out.Stream != "SubOut" || out.App != "SubApp" {
			t.Fatalf("output %s: %+v of %s/%s, want quantity %d (recent %d) of SubApp/SubOut: an output was missed or repeated",
				out.ID, data, out.App, out.Stream, want, wantRecent)
		}
		pos := parseID(t, out.ID)
		if pos[0] < lastPos[0] || (pos[0] == lastPos[0] && pos[1] <= lastPos[1]) {
			t.Fatalf("output ID %s does not follow %v", out.ID, lastPos)
		}
		lastPos = pos
		if want%40 == 0 {
			proxy.CloseClientConnections()
		}
	}
	if sub.Last() == "" {
		t.Error("Last is empty after outputs")
	}
	// Nothing more: Next waits until its context ends.
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	if out, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after the last output: %+v, %v; want a deadline error", out, err)
	}
	sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, client.ErrSubscriptionClosed) {
		t.Fatalf("Next after Close: %v", err)
	}

	// A new subscription from the last ID has nothing to replay, and from "earliest" all.
	again, err := direct.Subscribe(ctx, "SubOut", "earliest")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	first, err := again.Next(ctx)
	if err != nil || !strings.Contains(string(first.Data), `"quantity":1,`) {
		t.Fatalf("first output from earliest: %+v, %v", first, err)
	}
	if _, err := direct.Subscribe(ctx, "NoSuchStream", ""); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("subscribe to an unknown stream: %v, want ErrBadRequest", err)
	}
}

// parseID splits an output ID GROUP-INDEX-SEQ into INDEX and SEQ.
func parseID(t *testing.T, id string) [2]uint64 {
	t.Helper()
	f := strings.Split(id, "-")
	if len(f) != 3 {
		t.Fatalf("output ID %q is not GROUP-INDEX-SEQ", id)
	}
	i, err1 := strconv.ParseUint(f[1], 10, 64)
	s, err2 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("output ID %q: %v", id, err)
	}
	return [2]uint64{i, s}
}

// TestSubscribeFailsOverToAnotherNode gives a subscription a dead node first: it must
// connect to the next one.
func TestSubscribeFailsOverToAnotherNode(t *testing.T) {
	c := sharedNode(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	cl, err := client.New([]string{deadURL, c.nodes[0].url()}, client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, cl, "Fo")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for range 2 { // whichever node round robin starts at
		sub, err := cl.Subscribe(ctx, "FoOut", "earliest")
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
	}
}

// TestSubscribeSendsLastEventID: a fake node ends each connection after two outputs; the
// subscription reconnects with Last-Event-ID set to the last output it returned. With
// every node gone, Next gives up when its context ends.
func TestSubscribeSendsLastEventID(t *testing.T) {
	var mu sync.Mutex
	var asked []string // Last-Event-ID of each connection
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last := r.Header.Get("Last-Event-ID")
		if from := r.URL.Query().Get("from"); from != last && last != "" {
			http.Error(w, "from and Last-Event-ID differ", http.StatusBadRequest)
			return
		}
		mu.Lock()
		asked = append(asked, last)
		mu.Unlock()
		start := 0
		if last != "" {
			start = int(parseID(t, last)[1])
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, ": stream Out of group 0 after 0-7-%d\n\n", start)
		for i := start + 1; i <= start+2; i++ {
			fmt.Fprintf(w, "id: 0-7-%d\nevent: output\ndata: {\"id\":\"0-7-%d\",\"stream\":\"Out\",\"app\":\"A\",\"ts\":1,\"expired\":false,\"data\":{\"i\":%d}}\n\n: keep-alive\n\n", i, i, i)
		}
	}))
	c, err := client.New([]string{srv.URL}, client.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, "Out", "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for want := 1; want <= 5; want++ {
		out, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if out.ID != fmt.Sprintf("0-7-%d", want) || string(out.Data) != fmt.Sprintf(`{"i":%d}`, want) || out.App != "A" || out.TS != 1 {
			t.Fatalf("output %d: %+v", want, out)
		}
	}
	mu.Lock()
	got := strings.Join(asked, ",")
	mu.Unlock()
	if got != ",0-7-2,0-7-4" {
		t.Fatalf("connections asked for %q, want \",0-7-2,0-7-4\"", got)
	}
	srv.Close()
	if _, err := sub.Next(ctx); err != nil {
		t.Fatalf("the 6th output was read with the 5th: %v", err)
	}
	start := time.Now()
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with every node gone: %v, want the context's deadline", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Next took %v to see its context end", el)
	}
}
