package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tally-db/tally/client"
)

const benchUsage = `usage: tally bench [--addr URL[,URL...]] [--stream TradeStream] [--clients 8]
                  [--events-per-request 100] [--keys 1000] [--duration 10s] [--json]
                  [--ca FILE] [--user USER:PASSWORD]

Generates load: --clients clients each send batches of generated events to a stream
(POST /v1/streams/STREAM/events, NDJSON) as fast as the cluster acknowledges them, for
--duration, then prints throughput and request latency.

Only the sample trade schema is generated (testdata/cluster/trades.siddhi):
  define stream TradeStream (symbol string, price double, quantity long, timestamp long);
one line per event, with the symbol drawn uniformly from --keys symbols S000000, S000001, ...
and the time of the request as timestamp:
  {"symbol":"S000123","price":123.45,"quantity":42,"timestamp":1514783400000}
--stream may name another stream with these four attributes; the stream must be deployed
(checked with GET /v1/apps at the start).

Client i (1..N) sends as producer PREFIX-i with Producer-Seq 1, 2, 3, ...: a batch that got
a 503 (or 429/502/504) or no answer is sent again with the same seq and body, after the
Retry-After the server asked for or a backoff doubling from 50ms (both at most 5s), so it
is applied once; each such attempt counts as an error. Any other error answer (400, 404,
413, ...) stops the run with the server's message. Each client sends its requests to the
--addr nodes in turn (repeat --addr, or separate URLs with commas). Nodes serving HTTPS take
https:// addresses and --ca, and nodes with users --user, as for the other client commands;
the user needs the read permission (for the check of the stream) and write.

A progress line goes to stderr every second (events/s, requests/s and p99 latency of that
second; errors so far). The summary goes to stdout, as JSON with --json. Latency is that of
acknowledged requests, from sending the request to having read the answer, kept in a
log-linear histogram (within 1%). When --duration is over no new request is sent; requests
in flight are waited for (at most --timeout) and counted. Ctrl-C ends the run early, with
the summary.

flags:
`

// benchConfig configures one bench run.
type benchConfig struct {
	addrs            []string // base URLs, no trailing slash
	stream           string
	clients          int
	eventsPerRequest int
	keys             int
	duration         time.Duration
	timeout          time.Duration
	producerPrefix   string
	// conn is the TLS and credentials of every request (its ca and user; addr and timeout
	// are not used).
	conn clientFlags
	// progressEvery is how often a progress line is printed (0: never).
	progressEvery time.Duration
	// backoff is the first wait before a retry when the server gives no Retry-After; it
	// doubles up to maxBackoff, which also bounds Retry-After.
	backoff, maxBackoff time.Duration
	// opts are the clients' TLS and credentials (their Timeout is timeout).
	opts client.Options
}

// addrList is a repeatable flag of comma-separated addresses. The first Set replaces the
// default.
type addrList struct {
	vals []string
	set  bool
}

func (a *addrList) String() string {
	if a == nil {
		return ""
	}
	return strings.Join(a.vals, ",")
}

func (a *addrList) Set(v string) error {
	if !a.set {
		a.vals, a.set = nil, true
	}
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			a.vals = append(a.vals, p)
		}
	}
	return nil
}

func benchMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", benchUsage, stderr)
	addrs := &addrList{vals: []string{defaultAddr}}
	if env := os.Getenv("TALLY_ADDR"); env != "" {
		_ = addrs.Set(env)
		addrs.set = false
	}
	cfg := benchConfig{progressEvery: time.Second, backoff: 50 * time.Millisecond, maxBackoff: 5 * time.Second}
	fs.Var(addrs, "addr", "HTTP address of a node; repeat it or separate with commas to spread requests over several (env TALLY_ADDR)")
	fs.StringVar(&cfg.stream, "stream", "TradeStream", "stream to send events to; it must have the trade schema")
	fs.IntVar(&cfg.clients, "clients", 8, "concurrent clients, each with one request in flight")
	fs.IntVar(&cfg.eventsPerRequest, "events-per-request", 100, "events in each request")
	fs.IntVar(&cfg.keys, "keys", 1000, "distinct symbols")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to send")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "give up on a request (and retry it) after this long")
	fs.StringVar(&cfg.producerPrefix, "producer-prefix", "", "clients are producers PREFIX-1..PREFIX-N (default: bench-<random>); a reused prefix makes the cluster answer already-seen seqs as duplicates")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	// --ca and --user exactly as the other client commands define them (--addr and
	// --timeout differ: several addresses, and a retry after the timeout).
	scratch := flag.NewFlagSet("", flag.ContinueOnError)
	addClientFlags(scratch, &cfg.conn, time.Second)
	for _, name := range []string{"ca", "user"} {
		f := scratch.Lookup(name)
		fs.Var(f.Value, f.Name, f.Usage)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	msg := ""
	switch {
	case len(pos) > 0:
		msg = "unexpected arguments: " + strings.Join(pos, " ")
	case cfg.clients < 1:
		msg = fmt.Sprintf("--clients must be at least 1, got %d", cfg.clients)
	case cfg.eventsPerRequest < 1:
		msg = fmt.Sprintf("--events-per-request must be at least 1, got %d", cfg.eventsPerRequest)
	case cfg.keys < 1:
		msg = fmt.Sprintf("--keys must be at least 1, got %d", cfg.keys)
	case cfg.duration <= 0:
		msg = fmt.Sprintf("--duration must be positive, got %v", cfg.duration)
	case cfg.stream == "":
		msg = "--stream is empty"
	case len(addrs.vals) == 0:
		msg = "--addr is empty: give a node's HTTP address such as " + defaultAddr
	case len(cfg.producerPrefix) > 200:
		msg = "--producer-prefix is over 200 bytes"
	}
	if msg != "" {
		fmt.Fprintf(stderr, "tally bench: %s\n", msg)
		fs.Usage()
		return 2
	}
	for _, a := range addrs.vals {
		base, err := checkAddr(a)
		if err != nil {
			return fail(stderr, "bench", err)
		}
		cfg.addrs = append(cfg.addrs, base)
	}
	if cfg.opts, err = cfg.conn.options(); err != nil {
		return fail(stderr, "bench", err)
	}
	if cfg.producerPrefix == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.producerPrefix = "bench-" + hex.EncodeToString(b)
	}
	if err := checkStream(ctx, cfg); err != nil {
		return fail(stderr, "bench", err)
	}
	fmt.Fprintf(stderr, "tally bench: %d clients × %d events/request to %s on %s for %v, %d keys, producers %s-1..%d\n",
		cfg.clients, cfg.eventsPerRequest, cfg.stream, strings.Join(cfg.addrs, ","), cfg.duration, cfg.keys, cfg.producerPrefix, cfg.clients)
	sum, err := runBench(ctx, cfg, stderr)
	if *asJSON {
		out, _ := json.Marshal(sum)
		fmt.Fprintf(stdout, "%s\n", out)
	} else {
		fmt.Fprint(stdout, sum.text())
	}
	if err != nil {
		return fail(stderr, "bench", err)
	}
	if sum.Requests == 0 && !sum.Interrupted {
		fmt.Fprintf(stderr, "tally bench: no request was acknowledged")
		if sum.LastError != "" {
			fmt.Fprintf(stderr, "; the last error: %s", sum.LastError)
		}
		fmt.Fprintln(stderr)
		return 1
	}
	return 0
}

// checkStream asks the first node that answers whether an app defines the stream.
func checkStream(ctx context.Context, cfg benchConfig) error {
	opts := cfg.opts
	opts.Timeout = cfg.timeout
	c, err := client.New(cfg.addrs, opts)
	if err != nil {
		return err
	}
	apps, err := c.Apps(ctx)
	if err != nil {
		return plain(err)
	}
	var deployed []string
	for _, ap := range apps {
		for _, s := range ap.Streams {
			if s == cfg.stream {
				return nil
			}
		}
		deployed = append(deployed, fmt.Sprintf("%s (%s)", ap.Name, strings.Join(ap.Streams, ", ")))
	}
	if len(deployed) == 0 {
		return fmt.Errorf("no app is deployed, so there is no stream %s: deploy one with the trade schema, e.g. 'tally apps deploy testdata/cluster/trades.siddhi'", cfg.stream)
	}
	return fmt.Errorf("stream %s is not defined by any deployed app (deployed: %s); --stream names a stream with the trade schema (symbol string, price double, quantity long, timestamp long)",
		cfg.stream, strings.Join(deployed, "; "))
}

// ---- event generation ----

// eventGen appends trade events to a buffer without allocating.
type eventGen struct {
	rng   *mrand.Rand
	keys  int
	width int // digits of a symbol's number
}

func newEventGen(seed uint64, keys int) *eventGen {
	width := max(6, len(strconv.Itoa(keys-1)))
	return &eventGen{rng: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), keys: keys, width: width}
}

// appendBatch appends n NDJSON trade events stamped nowMs to buf.
func (g *eventGen) appendBatch(buf []byte, n int, nowMs int64) []byte {
	for range n {
		buf = append(buf, `{"symbol":"S`...)
		buf = appendPadded(buf, uint64(g.rng.IntN(g.keys)), g.width)
		buf = append(buf, `","price":`...)
		buf = strconv.AppendFloat(buf, float64(1+g.rng.IntN(100000))/100, 'f', 2, 64)
		buf = append(buf, `,"quantity":`...)
		buf = strconv.AppendInt(buf, int64(1+g.rng.IntN(100)), 10)
		buf = append(buf, `,"timestamp":`...)
		buf = strconv.AppendInt(buf, nowMs, 10)
		buf = append(buf, "}\n"...)
	}
	return buf
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	for n := len(tmp) - i; n < width; n++ {
		b = append(b, '0')
	}
	return append(b, tmp[i:]...)
}

// ---- latency histogram ----

// A histogram counts durations (ns) in log-linear buckets, like HdrHistogram: values below
// 2*histSub are exact; above, each power of two is split into histSub buckets, so a bucket
// is at most 1/histSub (0.8%) of its values wide. Values up to 2^histMaxBits ns (18 min)
// are kept apart; longer ones land in the last bucket. min, max and the sum are exact.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histMaxBits = 40
	histBuckets = (histMaxBits-histSubBits-1)*histSub + 2*histSub
)

type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64 // ns
	min, max int64
}

func histIndex(v int64) int {
	u := uint64(max(v, 0))
	u = min(u, 1<<histMaxBits-1)
	s := max(bits.Len64(u)-histSubBits-1, 0)
	return s*histSub + int(u>>s)
}

// histHigh is the largest value of bucket i.
func histHigh(i int) int64 {
	s := max(i/histSub-1, 0)
	m := int64(i - s*histSub)
	return (m+1)<<s - 1
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if h.n == 0 || v > h.max {
		h.max = v
	}
	h.counts[histIndex(v)]++
	h.n++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.n == 0 || o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

func (h *histogram) reset() { *h = histogram{} }

// quantile returns the value at or below which a fraction q of the recorded values are: the
// largest value of the bucket holding the rank ⌈q·n⌉ (so at most 0.8% over), kept within
// [min, max]; the minimum and maximum themselves at the ends.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == 1 {
		return time.Duration(h.min)
	}
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			if seen == h.n {
				return time.Duration(h.max) // the last bucket holds the maximum
			}
			return time.Duration(min(max(histHigh(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// ---- the run ----

// benchCounts are a client's counts since the reporter last took them.
type benchCounts struct {
	events, requests, duplicates, errors, retries int64
}

func (c *benchCounts) add(o benchCounts) {
	c.events += o.events
	c.requests += o.requests
	c.duplicates += o.duplicates
	c.errors += o.errors
	c.retries += o.retries
}

// benchClient is one client: its producer, its events, and what it did since the reporter
// last looked.
type benchClient struct {
	cfg      *benchConfig
	nodes    []*client.Client // one per node, so that every failure is seen and counted
	next     int              // index into nodes of the next request
	producer string           // the Producer-Id
	gen      *eventGen
	body     []byte // the batch being sent

	mu     sync.Mutex
	counts benchCounts
	hist   histogram
	errMsg string // the last error, not yet shown
}

// take returns and clears the client's counts and histogram, merging the histogram into h.
func (c *benchClient) take(h *histogram) (benchCounts, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, msg := c.counts, c.errMsg
	h.merge(&c.hist)
	c.counts, c.errMsg = benchCounts{}, ""
	c.hist.reset()
	return n, msg
}

// post sends the current batch as seq to the next node. A refusal is an *client.APIError,
// no answer an error matching client.ErrUnavailable, or ctx's error once ctx is done.
func (c *benchClient) post(ctx context.Context, seq uint64) (duplicate bool, err error) {
	node := c.nodes[c.next]
	c.next = (c.next + 1) % len(c.nodes)
	res, err := node.IngestNDJSON(ctx, c.cfg.stream, c.body, client.IngestOptions{ProducerID: c.producer, Seq: seq})
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, err
	}
	return res.Duplicate, nil
}

// loop sends batches until deadline, or until ctx is done. It returns an error only for an
// answer that stops the run.
func (c *benchClient) loop(ctx context.Context, deadline time.Time) error {
	n := c.cfg.eventsPerRequest
	for seq := uint64(1); ; seq++ {
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return nil
		}
		// A new buffer each batch: the transport may still read the last one's.
		c.body = c.gen.appendBatch(make([]byte, 0, cap(c.body)), n, time.Now().UnixMilli())
		backoff := c.cfg.backoff
		for {
			start := time.Now()
			dup, err := c.post(ctx, seq)
			if err == nil {
				lat := time.Since(start)
				c.mu.Lock()
				c.hist.record(lat)
				c.counts.requests++
				c.counts.events += int64(n)
				if dup {
					c.counts.duplicates++
				}
				c.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			wait := backoff
			var ae *client.APIError
			switch {
			case errors.As(err, &ae) && (errors.Is(ae, client.ErrUnavailable) || errors.Is(ae, client.ErrTooManyRequests)):
				if ae.HasRetryAfter {
					wait = ae.RetryAfter
				}
			case ae != nil:
				return benchRefused(c.producer, seq, ae)
			case errors.Is(err, client.ErrUnavailable):
				// The node was not reached: the same seq goes to the next one.
			default:
				return err
			}
			err = plain(err)
			wait = min(wait, c.cfg.maxBackoff)
			backoff = min(backoff*2, c.cfg.maxBackoff)
			c.mu.Lock()
			c.counts.errors++
			c.errMsg = err.Error()
			c.mu.Unlock()
			if !time.Now().Add(wait).Before(deadline) {
				return nil // over before the retry: this batch stays unacknowledged
			}
			if sleepCtx(ctx, wait) != nil {
				return nil
			}
			c.mu.Lock()
			c.counts.retries++
			c.mu.Unlock()
		}
	}
}

// benchRefused is the error of an answer that stops the run.
func benchRefused(producer string, seq uint64, he *client.APIError) error {
	msg := fmt.Sprintf("%s refused producer %s seq %d: %v", he.URL, producer, seq, refused{he})
	switch {
	case he.Status == http.StatusBadRequest && he.Event != nil:
		msg += "\ntally bench sends only the trade schema {symbol string, price double, quantity long, timestamp long}: does --stream have it?"
	case he.Status == http.StatusRequestEntityTooLarge:
		msg += "\nsend smaller requests with --events-per-request"
	}
	return errors.New(msg)
}

// benchSummary is what a run did.
type benchSummary struct {
	Stream           string         `json:"stream"`
	Addrs            []string       `json:"addrs"`
	Clients          int            `json:"clients"`
	EventsPerRequest int            `json:"events_per_request"`
	Keys             int            `json:"keys"`
	ProducerPrefix   string         `json:"producer_prefix"`
	DurationS        float64        `json:"duration_s"`
	Events           int64          `json:"events"`
	Requests         int64          `json:"requests"`
	Duplicates       int64          `json:"duplicates"`
	EventsPerS       float64        `json:"events_per_s"`
	RequestsPerS     float64        `json:"requests_per_s"`
	LatencyMS        latencySummary `json:"latency_ms"`
	Retries          int64          `json:"retries"`
	Errors           int64          `json:"errors"`
	LastError        string         `json:"last_error,omitempty"`
	Interrupted      bool           `json:"interrupted,omitempty"`
	// StoppedBy is the answer that stopped the run.
	StoppedBy string `json:"stopped_by,omitempty"`
}

type latencySummary struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// newBenchSummary computes the summary of counts and latencies over elapsed.
func newBenchSummary(cfg benchConfig, total benchCounts, h *histogram, elapsed time.Duration) benchSummary {
	s := benchSummary{
		Stream: cfg.stream, Addrs: cfg.addrs, Clients: cfg.clients, EventsPerRequest: cfg.eventsPerRequest,
		Keys: cfg.keys, ProducerPrefix: cfg.producerPrefix,
		DurationS: round(elapsed.Seconds(), 3),
		Events:    total.events, Requests: total.requests, Duplicates: total.duplicates,
		Retries: total.retries, Errors: total.errors,
		LatencyMS: latencySummary{
			P50: ms(h.quantile(0.5)), P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)),
			Max: ms(time.Duration(h.max)), Mean: ms(h.mean()),
		},
	}
	if sec := elapsed.Seconds(); sec > 0 {
		s.EventsPerS = round(float64(total.events)/sec, 1)
		s.RequestsPerS = round(float64(total.requests)/sec, 1)
	}
	return s
}

func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

// fmtMS formats a latency in milliseconds with three significant digits or so.
func fmtMS(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	prec := 0
	switch {
	case v < 1:
		prec = 3
	case v < 10:
		prec = 2
	case v < 100:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + "ms"
}

func (s benchSummary) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stream        %s on %s\n", s.Stream, strings.Join(s.Addrs, ","))
	fmt.Fprintf(&b, "load          %d clients × %d events/request, %d keys, producers %s-1..%d\n", s.Clients, s.EventsPerRequest, s.Keys, s.ProducerPrefix, s.Clients)
	dur := fmt.Sprintf("%.3fs", s.DurationS)
	if s.Interrupted {
		dur += " (interrupted)"
	}
	if s.StoppedBy != "" {
		dur += " (stopped by an error answer)"
	}
	fmt.Fprintf(&b, "duration      %s\n", dur)
	fmt.Fprintf(&b, "acknowledged  %d events in %d requests", s.Events, s.Requests)
	if s.Duplicates > 0 {
		fmt.Fprintf(&b, " (%d answered as duplicates: applied before)", s.Duplicates)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "throughput    %.0f events/s, %.1f requests/s\n", s.EventsPerS, s.RequestsPerS)
	l := s.LatencyMS
	d := func(v float64) string { return fmtMS(time.Duration(v * float64(time.Millisecond))) }
	fmt.Fprintf(&b, "latency       p50=%s  p99=%s  p99.9=%s  max=%s  mean=%s\n", d(l.P50), d(l.P99), d(l.P999), d(l.Max), d(l.Mean))
	fmt.Fprintf(&b, "retries       %d\n", s.Retries)
	fmt.Fprintf(&b, "errors        %d\n", s.Errors)
	if s.LastError != "" {
		fmt.Fprintf(&b, "last error    %s\n", s.LastError)
	}
	return b.String()
}

// runBench runs the clients until cfg.duration is over (or ctx is done, or an answer stops
// the run), printing progress to stderr, and returns the summary. The error is the answer
// that stopped the run.
func runBench(ctx context.Context, cfg benchConfig, stderr io.Writer) (benchSummary, error) {
	opts := cfg.opts
	opts.Timeout = cfg.timeout
	opts.MaxIdleConnsPerNode = cfg.clients * 2
	nodes := make([]*client.Client, len(cfg.addrs))
	for i, a := range cfg.addrs {
		var err error
		if nodes[i], err = client.New([]string{a}, opts); err != nil {
			return benchSummary{}, err
		}
	}
	clients := make([]*benchClient, cfg.clients)
	seed := uint64(time.Now().UnixNano())
	for i := range clients {
		clients[i] = &benchClient{
			cfg: &cfg, nodes: nodes, next: i % len(nodes),
			producer: fmt.Sprintf("%s-%d", cfg.producerPrefix, i+1),
			gen:      newEventGen(seed+uint64(i)*0x632be59bd9b4e019, cfg.keys),
			body:     make([]byte, 0, cfg.eventsPerRequest*80),
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var (
		wg       sync.WaitGroup
		stopOnce sync.Once
		stopErr  error
	)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.loop(runCtx, deadline); err != nil {
				stopOnce.Do(func() { stopErr = err; cancel() })
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var (
		total     benchCounts
		totalHist histogram
		tick      histogram
		lastErr   string
	)
	// collect takes every client's counts since the last call into total (and tick's
	// histogram), and returns the counts and the last new error message.
	collect := func() (benchCounts, string) {
		var n benchCounts
		msg := ""
		tick.reset()
		for _, c := range clients {
			cn, m := c.take(&tick)
			n.add(cn)
			if m != "" {
				msg = m
			}
		}
		total.add(n)
		totalHist.merge(&tick)
		if msg != "" {
			lastErr = msg
		}
		return n, msg
	}
	var tickC <-chan time.Time
	if cfg.progressEvery > 0 {
		t := time.NewTicker(cfg.progressEvery)
		defer t.Stop()
		tickC = t.C
	}
	last := start
loop:
	for {
		select {
		case <-done:
			break loop
		case now := <-tickC:
			n, msg := collect()
			sec := now.Sub(last).Seconds()
			last = now
			p99 := "-"
			if tick.n > 0 {
				p99 = fmtMS(tick.quantile(0.99))
			}
			fmt.Fprintf(stderr, "t=%ds  events/s=%.0f  requests/s=%.0f  p99=%s  errors=%d\n",
				int(now.Sub(start).Round(time.Second).Seconds()), float64(n.events)/sec, float64(n.requests)/sec, p99, total.errors)
			if msg != "" {
				fmt.Fprintf(stderr, "  last error: %s\n", msg)
			}
		}
	}
	elapsed := time.Since(start)
	collect()
	sum := newBenchSummary(cfg, total, &totalHist, elapsed)
	sum.LastError = lastErr
	sum.Interrupted = ctx.Err() != nil
	if stopErr != nil {
		sum.StoppedBy = stopErr.Error()
	}
	return sum, stopErr
}

// flag.Value is implemented by *addrList.
var _ flag.Value = (*addrList)(nil)
