package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchReq is an ingest request a fake node got.
type benchReq struct {
	server                    int
	producer, seq, ctype, len string
	body                      string
}

// benchFake is a set of fake nodes sharing one log of ingest requests. ingest answers a
// request; attempt is how many earlier requests had the same producer and seq. A nil
// ingest acknowledges everything.
type benchFake struct {
	mu     sync.Mutex
	reqs   []benchReq
	seen   map[string]int
	urls   []string
	ingest func(w http.ResponseWriter, req benchReq, attempt int)
}

const benchApps = `{"apps":[{"name":"TradeApp","streams":["TradeStream"],"aggregations":["TradeAggregation"],"queries":1}]}`

func newBenchFake(t *testing.T, nodes int, ingest func(w http.ResponseWriter, req benchReq, attempt int)) *benchFake {
	t.Helper()
	f := &benchFake{seen: map[string]int{}, ingest: ingest}
	for i := range nodes {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == "GET" && r.URL.Path == "/v1/apps":
				io.WriteString(w, benchApps)
				return
			case r.Method != "POST" || r.URL.Path != "/v1/streams/TradeStream/events":
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"error":"no such endpoint"}`)
				return
			}
			body, _ := io.ReadAll(r.Body)
			req := benchReq{server: i, producer: r.Header.Get("Producer-Id"), seq: r.Header.Get("Producer-Seq"),
				ctype: r.Header.Get("Content-Type"), len: r.Header.Get("Content-Length"), body: string(body)}
			f.mu.Lock()
			f.reqs = append(f.reqs, req)
			key := req.producer + "/" + req.seq
			attempt := f.seen[key]
			f.seen[key]++
			f.mu.Unlock()
			if f.ingest != nil {
				f.ingest(w, req, attempt)
				return
			}
			ack(w, req)
		}))
		t.Cleanup(srv.Close)
		f.urls = append(f.urls, srv.URL)
	}
	return f
}

func ack(w http.ResponseWriter, req benchReq) {
	fmt.Fprintf(w, `{"group":0,"index":1,"events":%d,"duplicate":false}`, strings.Count(req.body, "\n"))
}

func (f *benchFake) recorded() []benchReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]benchReq(nil), f.reqs...)
}

// byProducer groups requests by producer, in the order they came.
func byProducer(reqs []benchReq) map[string][]benchReq {
	m := map[string][]benchReq{}
	for _, r := range reqs {
		m[r.producer] = append(m[r.producer], r)
	}
	return m
}

func testBenchConfig(addrs []string) benchConfig {
	return benchConfig{addrs: addrs, stream: "TradeStream", clients: 3, eventsPerRequest: 5, keys: 7,
		duration: 100 * time.Millisecond, timeout: 2 * time.Second, producerPrefix: "tb",
		backoff: time.Millisecond, maxBackoff: 2 * time.Millisecond}
}

var tradeLine = regexp.MustCompile(`^\{"symbol":"S00000[0-6]","price":\d+\.\d\d,"quantity":\d+,"timestamp":(\d{13})\}$`)

func TestBenchRequests(t *testing.T) {
	f := newBenchFake(t, 2, func(w http.ResponseWriter, req benchReq, attempt int) {
		if req.producer == "tb-2" && req.seq == "2" && attempt < 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"no leader known"}`)
			return
		}
		ack(w, req)
	})
	cfg := testBenchConfig(f.urls)
	before := time.Now().UnixMilli()
	sum, err := runBench(t.Context(), cfg, io.Discard)
	after := time.Now().UnixMilli()
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.recorded()
	acked := 0
	for _, r := range reqs {
		if r.ctype != "application/x-ndjson" {
			t.Fatalf("Content-Type %q", r.ctype)
		}
		if r.len != strconv.Itoa(len(r.body)) {
			t.Fatalf("Content-Length %q for a body of %d bytes", r.len, len(r.body))
		}
		lines := strings.Split(r.body, "\n")
		if len(lines) != 6 || lines[5] != "" {
			t.Fatalf("body is not 5 NDJSON lines: %q", r.body)
		}
		for _, l := range lines[:5] {
			m := tradeLine.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("event %q is not a trade", l)
			}
			if ts, _ := strconv.ParseInt(m[1], 10, 64); ts < before || ts > after {
				t.Fatalf("timestamp %d is not the time of sending (%d..%d)", ts, before, after)
			}
			var ev struct {
				Symbol    string  `json:"symbol"`
				Price     float64 `json:"price"`
				Quantity  int64   `json:"quantity"`
				Timestamp int64   `json:"timestamp"`
			}
			dec := json.NewDecoder(strings.NewReader(l))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil || ev.Price <= 0 || ev.Quantity <= 0 {
				t.Fatalf("event %q: %+v %v", l, ev, err)
			}
		}
	}
	per := byProducer(reqs)
	if len(per) != 3 {
		t.Fatalf("producers %v, want tb-1..tb-3", len(per))
	}
	for p, rs := range per {
		if p != "tb-1" && p != "tb-2" && p != "tb-3" {
			t.Fatalf("producer %q", p)
		}
		want := uint64(1)
		for i, r := range rs {
			seq, _ := strconv.ParseUint(r.seq, 10, 64)
			retried := i > 0 && seq == want-1
			switch {
			case retried:
				if r.body != rs[i-1].body {
					t.Errorf("%s seq %d was retried with another body", p, seq)
				}
			case seq == want:
				want++
			default:
				t.Fatalf("%s sent seq %d after %d", p, seq, want-1)
			}
			if i > 0 && r.server == rs[i-1].server {
				t.Errorf("%s sent requests %d and %d to the same node: not round-robin", p, i-1, i)
			}
		}
		if len(rs) < 3 {
			t.Errorf("%s sent only %d requests in %v", p, len(rs), cfg.duration)
		}
	}
	tb2 := per["tb-2"]
	if len(tb2) < 4 || tb2[1].seq != "2" || tb2[2].seq != "2" || tb2[3].seq != "2" || tb2[1].body != tb2[3].body {
		t.Errorf("tb-2 did not retry seq 2 twice with the same body: %+v", tb2[:min(4, len(tb2))])
	}
	acked = len(reqs) - 2
	if sum.Requests != int64(acked) || sum.Events != int64(acked*5) || sum.Errors != 2 || sum.Retries != 2 {
		t.Errorf("summary %+v; the nodes acknowledged %d requests after 2 errors", sum, acked)
	}
	if !strings.Contains(sum.LastError, "no leader known (HTTP 503") {
		t.Errorf("last error %q", sum.LastError)
	}
}

func TestBench503RetryAfterIsBounded(t *testing.T) {
	f := newBenchFake(t, 1, func(w http.ResponseWriter, req benchReq, attempt int) {
		if req.seq == "1" && attempt < 3 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"the outcome is unknown: retry with the same Producer-Seq"}`)
			return
		}
		ack(w, req)
	})
	cfg := testBenchConfig(f.urls)
	cfg.clients = 1
	start := time.Now()
	sum, err := runBench(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %v: Retry-After not bounded", el)
	}
	reqs := f.recorded()
	for i := range 4 {
		if reqs[i].seq != "1" {
			t.Fatalf("request %d has seq %s, want 1 (retried)", i, reqs[i].seq)
		}
	}
	if reqs[4].seq != "2" || sum.Errors != 3 || sum.Retries != 3 || sum.Requests != int64(len(reqs)-3) {
		t.Errorf("summary %+v after %d requests", sum, len(reqs))
	}
}

func TestBenchNetworkErrorsGoToTheNextNode(t *testing.T) {
	f := newBenchFake(t, 1, nil)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	cfg := testBenchConfig([]string{f.urls[0], dead.URL})
	cfg.clients = 1
	sum, err := runBench(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.recorded()
	for i, r := range reqs {
		if r.seq != strconv.Itoa(i+1) {
			t.Fatalf("request %d to the live node has seq %s: every batch that failed on the dead node is retried on the live one", i, r.seq)
		}
	}
	if sum.Requests != int64(len(reqs)) || sum.Errors < 1 || sum.Retries < sum.Errors-1 || !strings.Contains(sum.LastError, strings.TrimPrefix(dead.URL, "http://")) {
		t.Errorf("summary %+v after %d requests", sum, len(reqs))
	}
}

var progressLine = regexp.MustCompile(`^t=\d+s  events/s=\d+  requests/s=\d+  p99=(\d+\.\d+ms|-)  errors=\d+$`)

func TestBenchDurationAndProgress(t *testing.T) {
	f := newBenchFake(t, 1, nil)
	cfg := testBenchConfig(f.urls)
	cfg.duration = 200 * time.Millisecond
	cfg.progressEvery = 40 * time.Millisecond
	var progress bytes.Buffer
	start := time.Now()
	sum, err := runBench(t.Context(), cfg, &progress)
	el := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if el < cfg.duration || el > cfg.duration+5*time.Second {
		t.Errorf("ran for %v, want about %v", el, cfg.duration)
	}
	// duration_s is rounded to the millisecond, so it may exceed the
	// measured time by up to half of one.
	if sum.DurationS < 0.2 || sum.DurationS > el.Seconds()+0.0005 {
		t.Errorf("duration_s %v, ran for %v", sum.DurationS, el)
	}
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if len(lines) < 3 {
		t.Errorf("%d progress lines in %v every %v:\n%s", len(lines), cfg.duration, cfg.progressEvery, progress.String())
	}
	for _, l := range lines {
		if !progressLine.MatchString(l) {
			t.Errorf("progress line %q", l)
		}
	}
	if n := len(f.recorded()); sum.Requests != int64(n) || sum.Events != int64(5*n) || n == 0 {
		t.Errorf("summary %+v; the node acknowledged %d requests", sum, n)
	}
	if rate := float64(sum.Events) / sum.DurationS; math.Abs(rate-sum.EventsPerS) > 0.01*rate {
		t.Errorf("events/s %v, want %v", sum.EventsPerS, rate)
	}
	if sum.LatencyMS.P50 <= 0 || sum.LatencyMS.P50 > sum.LatencyMS.P99 || sum.LatencyMS.P99 > sum.LatencyMS.P999 || sum.LatencyMS.P999 > sum.LatencyMS.Max {
		t.Errorf("latencies %+v", sum.LatencyMS)
	}
}

func TestBenchStopsOnBadRequest(t *testing.T) {
	f := newBenchFake(t, 1, func(w http.ResponseWriter, req benchReq, attempt int) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"event 0: attribute \"price\": want a number (double), got a string","event":0,"field":"price"}`)
	})
	start := time.Now()
	code, out, errOut := tally(t, "bench", "--addr", f.urls[0], "--duration", "10s", "--clients", "2")
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a 400 stopped the run after %v", el)
	}
	if code != 1 || !strings.Contains(errOut, `event 0: attribute "price": want a number (double), got a string (HTTP 400 Bad Request)`) ||
		!strings.Contains(errOut, "trade schema") || !strings.Contains(out, "acknowledged  0 events in 0 requests") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if n := len(f.recorded()); n > 2 {
		t.Errorf("%d requests after a 400", n)
	}
}

func TestBenchChecksTheStream(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/apps": answer(200, `{"apps":[{"name":"Other","streams":["S","T"],"aggregations":[],"queries":0}]}`),
	})
	code, _, errOut := tally(t, "bench", "--addr", api.URL)
	if code != 1 || !strings.Contains(errOut, "stream TradeStream is not defined by any deployed app (deployed: Other (S, T))") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	for _, r := range api.recorded() {
		if r.Method == "POST" {
			t.Errorf("sent %s %s", r.Method, r.Path)
		}
	}
	api = newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/apps": answer(200, `{"apps":[]}`)})
	if code, _, errOut := tally(t, "bench", "--addr", api.URL); code != 1 || !strings.Contains(errOut, "no app is deployed") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestBenchJSONAndAddrs(t *testing.T) {
	f := newBenchFake(t, 2, nil)
	code, out, errOut := tally(t, "bench", "--addr", f.urls[0]+", "+f.urls[1], "--duration", "100ms", "--clients", "2",
		"--events-per-request", "3", "--json", "--producer-prefix", "pp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum benchSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	reqs := f.recorded()
	servers := map[int]bool{}
	for _, r := range reqs {
		servers[r.server] = true
		if !strings.HasPrefix(r.producer, "pp-") {
			t.Errorf("producer %q", r.producer)
		}
	}
	if len(servers) != 2 || sum.Requests != int64(len(reqs)) || sum.Events != 3*sum.Requests || len(sum.Addrs) != 2 || sum.ProducerPrefix != "pp" {
		t.Errorf("summary %+v; requests to %d nodes", sum, len(servers))
	}
	if !strings.Contains(errOut, "tally bench: 2 clients × 3 events/request to TradeStream") {
		t.Errorf("stderr: %s", errOut)
	}

	// --addr repeated; the default producer prefix is random.
	code, out, errOut = tally(t, "bench", "--addr", f.urls[0], "--addr", f.urls[1], "--duration", "50ms", "--clients", "1", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil || len(sum.Addrs) != 2 || !strings.HasPrefix(sum.ProducerPrefix, "bench-") {
		t.Errorf("exit %d: %s %s", code, out, errOut)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"}, {"--events-per-request", "0"}, {"--keys", "0"}, {"--duration", "0s"}, {"--stream", ""},
		{"--addr", " , "}, {"extra"}, {"--nope"},
	} {
		code, _, errOut := tally(t, append([]string{"bench"}, args...)...)
		if code != 2 || !strings.Contains(errOut, "usage: tally bench") {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
	if code, _, errOut := tally(t, "bench", "--addr", "ftp://x"); code != 1 || !strings.Contains(errOut, "not an HTTP address") {
		t.Errorf("bad address: exit %d: %s", code, errOut)
	}
	if code, out, _ := tally(t, "bench", "-h"); code != 0 || out != "" {
		t.Errorf("-h: exit %d", code)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1000; i >= 1; i-- {
		h.record(time.Duration(i) * time.Millisecond)
	}
	near := func(name string, got, want time.Duration) {
		t.Helper()
		if got < want || float64(got-want) > 0.008*float64(want) {
			t.Errorf("%s = %v, want %v (at most 0.8%% more)", name, got, want)
		}
	}
	near("p50", h.quantile(0.5), 500*time.Millisecond)
	near("p99", h.quantile(0.99), 990*time.Millisecond)
	near("p99.9", h.quantile(0.999), 999*time.Millisecond)
	if h.quantile(1) != time.Second || h.max != int64(time.Second) || h.quantile(0) != time.Millisecond {
		t.Errorf("max %v, q(1) %v, q(0) %v", time.Duration(h.max), h.quantile(1), h.quantile(0))
	}
	if h.mean() != 500500*time.Microsecond {
		t.Errorf("mean %v", h.mean())
	}

	// Small values are exact; merging adds up; huge values are clamped into the last bucket.
	var a, b histogram
	for i := range 200 {
		a.record(time.Duration(i))
	}
	b.record(time.Hour)
	a.merge(&b)
	if a.n != 201 || a.quantile(0.5) != 100 || a.quantile(0.1) != 20 || a.quantile(1) != time.Hour || a.min != 0 {
		t.Errorf("n %d, p50 %v, p10 %v, max %v", a.n, a.quantile(0.5), a.quantile(0.1), a.quantile(1))
	}
	var empty histogram
	if empty.quantile(0.99) != 0 || empty.mean() != 0 {
		t.Error("empty histogram")
	}
	// Bucket bounds are contiguous and every value lies in its bucket.
	for i := 1; i < histBuckets; i++ {
		if histHigh(i) <= histHigh(i-1) {
			t.Fatalf("bucket %d ends at %d, bucket %d at %d", i, histHigh(i), i-1, histHigh(i-1))
		}
	}
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 257, 1000, 123456789, 1<<histMaxBits - 1} {
		i := histIndex(v)
		if v > histHigh(i) || (i > 0 && v <= histHigh(i-1)) {
			t.Errorf("%d is in bucket %d (%d..%d)", v, i, histHigh(i-1)+1, histHigh(i))
		}
	}
	if histIndex(math.MaxInt64) != histBuckets-1 || histIndex(-5) != 0 {
		t.Error("out-of-range values")
	}
}

func TestBenchSummaryMath(t *testing.T) {
	var h histogram
	for i := 1; i <= 100; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	cfg := testBenchConfig([]string{"http://n1"})
	s := newBenchSummary(cfg, benchCounts{events: 1000, requests: 10, errors: 2, retries: 1, duplicates: 1}, &h, 2*time.Second)
	if s.EventsPerS != 500 || s.RequestsPerS != 5 || s.DurationS != 2 || s.Events != 1000 || s.Errors != 2 || s.Retries != 1 {
		t.Errorf("summary %+v", s)
	}
	l := s.LatencyMS
	near := func(got, want float64) bool { return got >= want && got <= want*1.008 }
	if !near(l.P50, 50) || !near(l.P99, 99) || l.P999 != 100 || l.Max != 100 || l.Mean != 50.5 {
		t.Errorf("latencies %+v", l)
	}
	text := s.text()
	for _, want := range []string{"duration      2.000s", "acknowledged  1000 events in 10 requests (1 answered as duplicates", "throughput    500 events/s, 5.0 requests/s",
		"p99.9=100ms  max=100ms  mean=50.5ms", "retries       1", "errors        2"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary text lacks %q:\n%s", want, text)
		}
	}
	for d, want := range map[time.Duration]string{432 * time.Microsecond: "0.432ms", 1234 * time.Microsecond: "1.23ms", 12345 * time.Microsecond: "12.3ms", 1234 * time.Millisecond: "1234ms"} {
		if got := fmtMS(d); got != want {
			t.Errorf("fmtMS(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestEventGen(t *testing.T) {
	g := newEventGen(1, 3)
	buf := g.appendBatch(nil, 300, 1514783400000)
	lines := strings.Split(strings.TrimSuffix(string(buf), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 4 || ev["timestamp"] != float64(1514783400000) {
			t.Fatalf("%q: %v %v", l, ev, err)
		}
		seen[ev["symbol"].(string)] = true
	}
	if len(lines) != 300 || len(seen) != 3 || !seen["S000000"] || !seen["S000002"] {
		t.Errorf("%d events, symbols %v", len(lines), seen)
	}
	if g := newEventGen(1, 10_000_001); g.width != 8 {
		t.Errorf("width %d for 10000001 keys", g.width)
	}
	for v, want := range map[uint64]string{0: "000000", 42: "000042", 123456: "123456", 1234567: "1234567"} {
		if got := string(appendPadded([]byte("x"), v, 6)); got != "x"+want {
			t.Errorf("appendPadded(%d) = %s", v, got)
		}
	}
	buf = make([]byte, 0, 64<<10)
	if n := testing.AllocsPerRun(20, func() { buf = g.appendBatch(buf[:0], 100, 1514783400000) }); n != 0 {
		t.Errorf("appendBatch allocates %v times per batch", n)
	}
}
