package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// ErrPublisherClosed is returned by Add and Flush after Close.
var ErrPublisherClosed = errors.New("publisher is closed")

// PublisherOptions configures a Publisher. The zero value is usable.
type PublisherOptions struct {
	// ProducerID names the publisher to the cluster's duplicate detection. Default: the
	// one in StatePath's file, else a new random ID ("pub-" and 16 hex digits).
	ProducerID string
	// StatePath, when set, is a file where the publisher keeps its producer ID, its next
	// seq and the batch in flight, fsynced before each batch is first sent. A publisher
	// created again with the same file (after a crash or a restart) resends that batch
	// with its seq and goes on with higher seqs, so nothing it sent is applied twice. One
	// publisher at a time per file: a second one fails while the first is open (a lock on
	// StatePath + ".lock", released by Close or the process's end).
	StatePath string
	// FirstSeq is the seq of the first batch of a new producer (default 1). It is for a
	// producer whose earlier batches were sent another way; a StatePath's file, when it
	// exists, says where to go on instead.
	FirstSeq uint64
	// MaxBatch is the most events per request (default 500).
	MaxBatch int
	// Linger is how long an incomplete batch waits for more events before it is sent
	// (default 10ms). Flush and Close send at once.
	Linger time.Duration
	// MaxPending is how many events Add buffers before it blocks (default 4×MaxBatch).
	MaxPending int
	// RetryFor gives up on a batch the cluster has not accepted after retrying this long;
	// zero retries until Close gives up.
	RetryFor time.Duration
	// Backoff is the first wait after every node failed a batch, when the server gave no
	// Retry-After (default 50ms); it doubles up to MaxBackoff (default 2s), which also caps
	// the server's Retry-After.
	Backoff, MaxBackoff time.Duration
}

// Publisher sends events to one stream exactly once. Events are batched (MaxBatch,
// Linger); batch k of the producer carries Producer-Id and Producer-Seq k and goes to the
// next node round robin. A batch is retried with the same seq, on the next node, while
// nodes cannot be reached or answer 503 or 429, so the cluster applies it once however
// often it is sent; batches go one at a time, in seq order. A batch the cluster refuses
// (4xx), or that RetryFor gives up on, stops the publisher: Add, Flush and Close return the
// *BatchError from then on. A StatePath's file keeps such a batch for the next publisher
// unless the cluster refused its contents (ErrBadRequest).
//
// A Publisher owns one goroutine, which sends; Close ends it. Its methods are safe for
// concurrent use.
type Publisher struct {
	c      *Client
	stream string
	path   string
	opts   PublisherOptions
	id     string

	ctx        context.Context // the sender's: canceled when Close gives up
	cancel     context.CancelFunc
	kick       chan struct{} // wakes the sender
	exited     chan struct{} // closed when the sender returns
	unlock     func()        // releases the state file's lock
	unlockOnce sync.Once

	mu        sync.Mutex
	buf       []json.RawMessage // events not yet in a batch
	firstAt   time.Time         // when buf's oldest event was added
	added     uint64            // events added (a recovered batch included)
	taken     uint64            // events moved into batches
	done      uint64            // events of batches acknowledged
	flushUpTo uint64            // send incomplete batches until taken reaches this
	nextSeq   uint64
	recovered *stateBatch // the state file's pending batch, sent first
	closing   bool
	err       error // the first permanent failure
	changed   chan struct{}
	indexes   Indexes
	stats     PublisherStats
}

// PublisherStats counts what a Publisher did.
type PublisherStats struct {
	// Events were applied; Duplicates were in batches the cluster had already applied
	// (a retry of a batch whose answer was lost), so not again.
	Events, Duplicates uint64
	// Batches were acknowledged; Retries is how many requests were sent again.
	Batches, Retries uint64
}

// BatchError is a batch the cluster refused for good.
type BatchError struct {
	Seq    uint64
	Events int
	Err    error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("batch %d (%d events) not published: %v", e.Seq, e.Events, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Publisher returns a publisher of events to stream. It fails only when its StatePath
// cannot be read or does not fit (another stream or producer ID).
func (c *Client) Publisher(stream string, opts PublisherOptions) (*Publisher, error) {
	if stream == "" {
		return nil, errors.New("client: Publisher needs a stream name")
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.Linger <= 0 {
		opts.Linger = 10 * time.Millisecond
	}
	if opts.MaxPending < opts.MaxBatch {
		opts.MaxPending = 4 * opts.MaxBatch
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff < opts.Backoff {
		opts.MaxBackoff = max(2*time.Second, opts.Backoff)
	}
	if len(opts.ProducerID) > 256 {
		return nil, errors.New("client: ProducerID is over 256 bytes")
	}
	p := &Publisher{c: c, stream: stream, path: "/v1/streams/" + url.PathEscape(stream) + "/events", opts: opts,
		id: opts.ProducerID, nextSeq: max(opts.FirstSeq, 1), kick: make(chan struct{}, 1), exited: make(chan struct{}),
		changed: make(chan struct{}), indexes: Indexes{}}
	p.unlock = func() {}
	if opts.StatePath != "" {
		unlock, err := lockState(opts.StatePath)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		st, ok, err := loadState(opts.StatePath)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("client: %w", err)
		}
		p.unlock = unlock
		if ok {
			switch {
			case st.Stream != stream:
				unlock()
				return nil, fmt.Errorf("client: publisher state %s is of stream %q, not %q", opts.StatePath, st.Stream, stream)
			case p.id != "" && p.id != st.ProducerID:
				unlock()
				return nil, fmt.Errorf("client: publisher state %s is of producer %q, not %q", opts.StatePath, st.ProducerID, p.id)
			}
			p.id, p.nextSeq, p.recovered = st.ProducerID, st.NextSeq, st.Pending
			if p.recovered != nil {
				n := uint64(len(p.recovered.Events))
				p.added, p.taken = n, n
			}
		}
	}
	if p.id == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		p.id = "pub-" + hex.EncodeToString(b)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.run()
	return p, nil
}

// ProducerID returns the publisher's Producer-Id.
func (p *Publisher) ProducerID() string { return p.id }

// Add queues one event: a JSON object with the stream's attributes, as json.RawMessage or
// []byte, or any value that encoding/json marshals to an object. It blocks while
// MaxPending events wait to be sent, until ctx is done. Add returns once the event is
// queued: Flush waits until it is acknowledged.
func (p *Publisher) Add(ctx context.Context, event any) error {
	raw, err := marshalEvent(event)
	if err != nil {
		return err
	}
	p.mu.Lock()
	for {
		if err := p.stoppedLocked(); err != nil {
			p.mu.Unlock()
			return err
		}
		if len(p.buf) < p.opts.MaxPending {
			break
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
		p.mu.Lock()
	}
	p.buf = append(p.buf, raw)
	if len(p.buf) == 1 {
		p.firstAt = time.Now()
	}
	p.added++
	wake := len(p.buf) == 1 || len(p.buf) >= p.opts.MaxBatch
	p.mu.Unlock()
	if wake {
		p.wake()
	}
	return nil
}

// marshalEvent returns event as compact JSON (one NDJSON line), checking it is an object.
func marshalEvent(event any) (json.RawMessage, error) {
	var b []byte
	switch e := event.(type) {
	case json.RawMessage:
		b = e
	case []byte:
		b = e
	default:
		var err error
		if b, err = json.Marshal(event); err != nil {
			return nil, fmt.Errorf("client: encode event: %w", err)
		}
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("client: event is not valid JSON: %w", err)
	}
	if out.Len() == 0 || out.Bytes()[0] != '{' {
		return nil, fmt.Errorf("client: event %.60s is not a JSON object (an event is an object with the stream's attributes)", out.Bytes())
	}
	return out.Bytes(), nil
}

// stoppedLocked returns why the publisher takes no more events, or nil.
func (p *Publisher) stoppedLocked() error {
	if p.err != nil {
		return p.err
	}
	if p.closing {
		return ErrPublisherClosed
	}
	return nil
}

func (p *Publisher) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// broadcastLocked wakes everyone waiting for progress.
func (p *Publisher) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Flush sends the events added so far, without waiting for full batches, and waits until
// the cluster has acknowledged them all, a batch is refused, or ctx is done.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.closing && p.err == nil {
		p.mu.Unlock()
		return ErrPublisherClosed
	}
	target := p.added
	p.flushUpTo = max(p.flushUpTo, target)
	p.mu.Unlock()
	p.wake()
	return p.waitDone(ctx, target)
}

// waitDone waits until target events are acknowledged.
func (p *Publisher) waitDone(ctx context.Context, target uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.done < target {
		if p.err != nil {
			return p.err
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			p.mu.Lock()
			return fmt.Errorf("flush: %d events not acknowledged yet: %w", target-min(p.done, target), ctx.Err())
		case <-ch:
		case <-p.exited:
		}
		p.mu.Lock()
		if p.done < target && p.err == nil && isClosed(p.exited) {
			return fmt.Errorf("flush: %d events not acknowledged: %w", target-p.done, ErrPublisherClosed)
		}
	}
	return p.err
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Close sends what was added and waits until it is acknowledged or ctx is done, then
// stops the publisher's goroutine. When ctx ends first, the batch in flight is abandoned
// (a StatePath keeps it for the next publisher) and the events not yet sent are dropped;
// the error says how many were not acknowledged.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.wake()
	select {
	case <-p.exited:
	case <-ctx.Done():
	}
	p.cancel()
	<-p.exited
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.unlockOnce.Do(p.unlock)
	if p.err != nil {
		return p.err
	}
	if p.done < p.added {
		cause := ctx.Err()
		if cause == nil {
			cause = ErrPublisherClosed
		}
		return fmt.Errorf("close publisher: %d of %d events not acknowledged: %w", p.added-p.done, p.added, cause)
	}
	if p.opts.StatePath != "" {
		// Everything is acknowledged: the next publisher has nothing to resend.
		if err := saveState(p.opts.StatePath, &publisherState{ProducerID: p.id, Stream: p.stream, NextSeq: p.nextSeq}); err != nil {
			return fmt.Errorf("close publisher: %w", err)
		}
	}
	return nil
}

// Indexes returns, per group, the highest Raft index of the batches acknowledged so far:
// a query with QueryOptions.MinIndex set to them sees every acknowledged event.
func (p *Publisher) Indexes() Indexes {
	p.mu.Lock()
	defer p.mu.Unlock()
	ix := Indexes{}
	ix.merge(p.indexes)
	return ix
}

// Stats returns what the publisher did so far.
func (p *Publisher) Stats() PublisherStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// batch is one request's worth of events.
type batch struct {
	seq    uint64
	events []json.RawMessage
	fresh  bool // never sent before: persist it first
}

// run is the publisher's goroutine: it takes batches and sends them, one at a time.
func (p *Publisher) run() {
	defer close(p.exited)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		b, wait := p.nextBatchLocked(time.Now())
		stop := b == nil && p.closing && len(p.buf) == 0
		p.mu.Unlock()
		if stop {
			return
		}
		if b == nil {
			timer.Reset(wait)
			select {
			case <-p.ctx.Done():
				return
			case <-p.kick:
			case <-timer.C:
			}
			continue
		}
		if !p.publish(b) {
			return
		}
	}
}

// nextBatchLocked takes the next batch to send, or says how long to wait for one.
func (p *Publisher) nextBatchLocked(now time.Time) (*batch, time.Duration) {
	if r := p.recovered; r != nil {
		p.recovered = nil
		return &batch{seq: r.Seq, events: r.Events}, 0
	}
	n := len(p.buf)
	if n == 0 {
		return nil, time.Hour
	}
	if lingered := now.Sub(p.firstAt); n < p.opts.MaxBatch && p.taken >= p.flushUpTo && !p.closing && lingered < p.opts.Linger {
		return nil, p.opts.Linger - lingered
	}
	k := min(n, p.opts.MaxBatch)
	b := &batch{seq: p.nextSeq, events: p.buf[:k:k], fresh: true}
	p.buf = p.buf[k:]
	p.firstAt = now
	p.taken += uint64(k)
	p.nextSeq++
	p.broadcastLocked() // room for Add
	return b, 0
}

// publish sends b until it is acknowledged. It returns false when the publisher must stop:
// the batch was refused, its state could not be saved, or Close gave up.
func (p *Publisher) publish(b *batch) bool {
	if b.fresh && p.opts.StatePath != "" {
		st := &publisherState{ProducerID: p.id, Stream: p.stream, NextSeq: b.seq + 1, Pending: &stateBatch{Seq: b.seq, Events: b.events}}
		if err := saveState(p.opts.StatePath, st); err != nil {
			p.fail(&BatchError{Seq: b.seq, Events: len(b.events), Err: err})
			return false
		}
	}
	ans, err := p.send(b)
	if err != nil {
		if p.ctx.Err() != nil {
			return false
		}
		if errors.Is(err, ErrBadRequest) && p.opts.StatePath != "" {
			// Sending the batch again could only be refused again: the next publisher on
			// the file must not. (One refused for its credentials is kept, to be sent once
			// they are fixed.)
			st := &publisherState{ProducerID: p.id, Stream: p.stream, NextSeq: b.seq + 1}
			if serr := saveState(p.opts.StatePath, st); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		p.fail(&BatchError{Seq: b.seq, Events: len(b.events), Err: err})
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := uint64(len(b.events))
	p.done += n
	p.stats.Batches++
	if ans.Duplicate {
		p.stats.Duplicates += n
	} else {
		p.stats.Events += n
	}
	p.indexes.merge(ans.Indexes())
	p.broadcastLocked()
	return true
}

func (p *Publisher) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
	p.broadcastLocked()
}

// send posts b, retrying with the same seq on the next node while that may succeed.
func (p *Publisher) send(b *batch) (*IngestResult, error) {
	r := ingestRequest(p.path, b.events, p.id, b.seq)
	nodes := p.c.nodes
	node := p.c.pick()
	first, backoff := time.Now(), p.opts.Backoff
	for failed := 1; ; failed++ {
		resp, err := p.c.send(p.ctx, nodes[node], r)
		if err == nil {
			p.c.noteSuccess(node)
			var ans IngestResult
			if err := decode(resp, &ans); err != nil {
				return nil, err
			}
			return &ans, nil
		}
		if p.ctx.Err() != nil {
			return nil, p.ctx.Err()
		}
		if !retryable(err) {
			return nil, err
		}
		// The next node at once; after a round of failures (or a 429), a pause.
		p.c.noteFailure(node, err)
		node = p.c.after(node)
		wait := time.Duration(0)
		if failed%len(nodes) == 0 || errors.Is(err, ErrTooManyRequests) {
			wait = backoff
			if ra, ok := RetryAfter(err); ok {
				wait = ra
			}
			wait = min(wait, p.opts.MaxBackoff)
			backoff = min(2*backoff, p.opts.MaxBackoff)
		}
		if p.opts.RetryFor > 0 && time.Since(first)+wait > p.opts.RetryFor {
			return nil, fmt.Errorf("giving up after retrying for %v: %w", time.Since(first).Round(time.Millisecond), unavailable(err))
		}
		p.mu.Lock()
		p.stats.Retries++
		p.mu.Unlock()
		p.c.logger.Warn("tally publish failed; retrying", "stream", p.stream, "seq", b.seq, "next_node", nodes[node], "wait", wait, "err", err)
		if err := sleep(p.ctx, wait); err != nil {
			return nil, err
		}
	}
}
