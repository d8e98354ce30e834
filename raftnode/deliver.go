package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/siddhiql"
)

// deliverCheck is how often the delivery supervisor compares the running sink workers with
// leadership and the deployed sinks.
const deliverCheck = 50 * time.Millisecond

// deliverBatch is how many outputs a sink worker reads from the outbox at a time.
const deliverBatch = 256

// deliverState is the leader-side delivery bookkeeping: one worker per sink while this
// replica leads.
type deliverState struct {
	mu     sync.Mutex
	status map[string]*sinkStatus // by engine.Sink.Key()
	// delivered counts the outputs this node delivered, by sinkName.
	delivered map[string]uint64
}

// sinkName names a sink in metrics: its stream and its position among the stream's sinks
// (the key holds its URL and headers, which may carry credentials).
func sinkName(stream string, index int) string { return fmt.Sprintf("%s/%d", stream, index) }

// sinkStatus is a running worker's local view, for SinkStatus.
type sinkStatus struct {
	failing  bool
	lastErr  string
	sent     fsm.OutPos
	attempts uint64
	skipped  uint64 // outputs refused for good (permanentError)
}

// SinkStatus is a sink as this node sees it: the replicated state plus, on the leader, the
// delivering worker's progress.
type SinkStatus struct {
	fsm.SinkState
	// Active is set on the leader, whose worker delivers this sink.
	Active bool
	// Failing is set while the destination refuses or cannot be reached; LastError says why.
	Failing   bool
	LastError string
	// Skipped counts the outputs the destination refused for good while this node led
	// (an SMTP 5xx answer): logged, not retried.
	Skipped uint64
}

// SinkStatus lists the group's sinks.
func (n *Node) SinkStatus() []SinkStatus {
	sinks := n.fsm.Sinks()
	out := make([]SinkStatus, len(sinks))
	n.deliver.mu.Lock()
	defer n.deliver.mu.Unlock()
	for i, s := range sinks {
		out[i].SinkState = s
		if st := n.deliver.status[s.Key()]; st != nil {
			out[i].Active, out[i].Failing, out[i].LastError, out[i].Skipped = true, st.failing, st.lastErr, st.skipped
		}
	}
	return out
}

type sinkWorker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// deliverLoop runs one worker per deployed sink while this replica leads (after its
// barrier, so the replicated positions it starts from are current), and stops them when
// leadership is lost, the term changes or the sink goes away.
func (n *Node) deliverLoop() {
	defer n.wg.Done()
	workers := map[string]*sinkWorker{}
	var term uint64
	stop := func(key string) {
		w := workers[key]
		w.cancel()
		<-w.done
		delete(workers, key)
		n.deliver.mu.Lock()
		delete(n.deliver.status, key)
		n.deliver.mu.Unlock()
	}
	stopAll := func() {
		for k := range workers {
			stop(k)
		}
	}
	defer stopAll()
	t := time.NewTicker(deliverCheck)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		ready := n.readyTerm.Load()
		if !n.IsLeader() || ready == 0 || ready != n.raft.CurrentTerm() {
			stopAll()
			continue
		}
		if ready != term {
			stopAll()
			term = ready
		}
		want := map[string]engine.Sink{}
		for _, s := range n.fsm.Sinks() {
			// A sink without a replicated position waits for the next deploy or undeploy to
			// give it one: an email sink restored from a state written when email sinks were
			// declarations only.
			if _, ok := n.fsm.SinkPosition(s.Stream, s.Index); ok {
				want[s.Key()] = s.Sink
			}
		}
		for k := range workers {
			if _, ok := want[k]; !ok {
				stop(k)
			}
		}
		for k, sk := range want {
			if workers[k] != nil {
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			w := &sinkWorker{cancel: cancel, done: make(chan struct{})}
			workers[k] = w
			st := &sinkStatus{}
			n.deliver.mu.Lock()
			if n.deliver.status == nil {
				n.deliver.status = map[string]*sinkStatus{}
			}
			n.deliver.status[k] = st
			n.deliver.mu.Unlock()
			go func() {
				defer close(w.done)
				n.runSink(ctx, sk, st)
			}()
		}
	}
}

// runSink delivers one sink's outputs in log order, from its replicated position, until ctx
// ends (leadership lost) or a proposal fails. Each output is retried until it succeeds; the
// position is replicated at most every DeliveryRecordInterval while outputs flow, and as
// soon as the sink has caught up.
func (n *Node) runSink(ctx context.Context, sk engine.Sink, st *sinkStatus) {
	lg := n.logger.With("sink", sk.String())
	name := sinkName(sk.Stream, sk.Index)
	d := newDeliverer(n, sk, lg)
	defer d.close()
	var sent, recorded fsm.OutPos
	lastRecord := time.Now()
	record := func() bool {
		pctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
		res, err := n.propose(pctx, &fsm.Command{Kind: fsm.KindDelivered, Time: n.stamp(), Text: sk.Stream, Sink: uint32(sk.Index), Through: sent})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrClosed) {
				lg.Warn("cannot replicate the delivered position; the next leader delivers again from the last one", "through", sent.ID(n.cfg.Group), "err", err)
			}
			return false
		}
		recorded, lastRecord = sent, time.Now()
		return true
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		rep, ok := n.fsm.SinkPosition(sk.Stream, sk.Index)
		if !ok {
			return // undeployed; the supervisor stops this worker
		}
		if sent.Less(rep) {
			sent = rep
		}
		if recorded.Less(rep) {
			recorded = rep
		}
		changed := n.fsm.OutputsChanged()
		entries, err := n.fsm.OutputsAfter(sk.Stream, sent, deliverBatch)
		if err != nil { // cannot happen: undelivered outputs are never trimmed
			lg.Error("outputs to deliver are gone", "err", err)
			return
		}
		if len(entries) == 0 {
			wait := time.Hour
			if recorded.Less(sent) {
				wait = n.cfg.DeliveryRecordInterval - time.Since(lastRecord)
				if wait <= 0 {
					if !record() {
						return
					}
					continue
				}
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-timer.C:
			}
			timer.Stop()
			continue
		}
		for i := range entries {
			done, skipped := d.deliver(ctx, &entries[i], st, lg)
			if !done {
				return
			}
			sent = entries[i].Pos
			n.deliver.mu.Lock()
			st.sent = sent
			if n.deliver.delivered == nil {
				n.deliver.delivered = map[string]uint64{}
			}
			if !skipped {
				n.deliver.delivered[name]++
			}
			n.deliver.mu.Unlock()
		}
		if time.Since(lastRecord) >= n.cfg.DeliveryRecordInterval && !record() {
			return
		}
	}
}

// transport sends one output to a sink's destination, once. An error is retried with
// backoff unless it is a permanentError.
type transport interface {
	deliver(ctx context.Context, e *fsm.OutEntry) error
	close()
}

// permanentError: the destination refused this output for good (an SMTP server's 5xx
// answer to its recipients or message, a mail that does not render). It is logged and
// skipped, not retried: retrying could only wedge the sink.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// deliverer sends outputs to one sink through its transport.
type deliverer struct {
	n  *Node
	sk engine.Sink
	t  transport
}

// newDeliverer makes the sink's transport.
func newDeliverer(n *Node, sk engine.Sink, lg *slog.Logger) *deliverer {
	d := &deliverer{n: n, sk: sk}
	switch sk.Type {
	case engine.SinkHTTP:
		d.t = newHTTPTransport(n, sk)
	case engine.SinkEmail:
		d.t = newEmailTransport(n, sk, lg)
	default:
		d.t = &logTransport{n: n, sk: sk}
	}
	return d
}

// close releases the transport's connections.
func (d *deliverer) close() { d.t.close() }

// deliver sends one output, retrying with exponential backoff (retry.interval doubled up to
// retry.max.interval) until it succeeds or fails for good (then it is logged and skipped).
// done is false when ctx ended first; skipped is set for an output refused for good.
func (d *deliverer) deliver(ctx context.Context, e *fsm.OutEntry, st *sinkStatus, lg *slog.Logger) (done, skipped bool) {
	backoff := time.Duration(d.sk.RetryIntervalMillis) * time.Millisecond
	maxBackoff := time.Duration(d.sk.MaxBackoffMillis) * time.Millisecond
	id := e.Pos.ID(d.n.cfg.Group)
	for {
		err := d.t.deliver(ctx, e)
		var perm permanentError
		permanent := errors.As(err, &perm)
		d.n.deliver.mu.Lock()
		st.attempts++
		wasFailing := st.failing
		switch {
		case err == nil:
			st.failing, st.lastErr = false, ""
		case permanent:
			st.failing, st.lastErr = false, err.Error()
			st.skipped++
		default:
			st.failing, st.lastErr = true, err.Error()
		}
		d.n.deliver.mu.Unlock()
		if err == nil || permanent {
			if permanent && ctx.Err() == nil {
				lg.Error("sink refused the output for good; skipped", "id", id, "err", err)
			}
			if wasFailing {
				lg.Info("sink delivers again", "id", id)
			}
			return true, permanent
		}
		if ctx.Err() != nil {
			return false, false
		}
		if !wasFailing {
			lg.Warn("sink delivery failed; retrying until it succeeds (outputs wait in the outbox)", "id", id, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, false
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// logTransport writes one log line per output.
type logTransport struct {
	n   *Node
	sk  engine.Sink
	buf []byte
}

func (l *logTransport) deliver(_ context.Context, e *fsm.OutEntry) error {
	l.buf = e.AppendJSON(l.buf[:0], l.n.cfg.Group, l.sk.Stream)
	msg := l.sk.Prefix
	if msg == "" {
		msg = "output"
	}
	l.n.logger.Info(msg, "sink", l.sk.String(), "event", string(l.buf))
	return nil
}

func (l *logTransport) close() {}

// httpTransport POSTs each output.
type httpTransport struct {
	n      *Node
	sk     engine.Sink
	client *http.Client
	buf    []byte
}

// newHTTPTransport makes the sink's HTTP client: no proxy, every connection checked against
// the sink policy once the address is resolved (never link-local; with --sink-allow, only
// allowed hosts), and redirects never followed (a 3xx is a failed delivery, retried), so
// that the body and headers only ever go where publisher.url says.
func newHTTPTransport(n *Node, sk engine.Sink) *httpTransport {
	host := ""
	if u, err := url.Parse(sk.URL); err == nil {
		host = u.Hostname()
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           n.cfg.SinkPolicy.dialContext(host),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &httpTransport{n: n, sk: sk, client: &http.Client{
		Transport:     t,
		Timeout:       time.Duration(sk.TimeoutMillis) * time.Millisecond,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// close drops the client's idle connections.
func (h *httpTransport) close() { h.client.CloseIdleConnections() }

// deliver POSTs the output once; a 2xx answer is success.
func (h *httpTransport) deliver(ctx context.Context, e *fsm.OutEntry) error {
	h.buf = e.AppendJSON(h.buf[:0], h.n.cfg.Group, h.sk.Stream)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.sk.URL, bytes.NewReader(h.buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", e.Pos.ID(h.n.cfg.Group))
	for _, hd := range h.sk.Headers {
		req.Header.Set(hd[0], hd[1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return redactedError{err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 3 {
		return fmt.Errorf("%s answered %s (to %s): sinks never follow redirects", siddhiql.RedactURL(h.sk.URL), resp.Status,
			siddhiql.RedactURL(resp.Header.Get("Location")))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", siddhiql.RedactURL(h.sk.URL), resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// redactedError shows an error with the passwords of the URLs it names hidden.
type redactedError struct{ err error }

func (e redactedError) Error() string { return siddhiql.RedactURL(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }
