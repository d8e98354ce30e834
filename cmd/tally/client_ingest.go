package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/tally-db/tally/client"
)

const ingestUsage = `usage: tally ingest --stream STREAM [--batch 1000] [--producer ID --start-seq N] FILE.ndjson|-

Sends events to a stream (POST /v1/streams/STREAM/events). Each line of FILE (- for standard
input) is one event: a JSON object with the stream's attributes, e.g.
  {"symbol":"wso2","price":100.0,"quantity":10,"timestamp":1514783400000}

Lines go in batches; batch k is sent with Producer-Id: ID and Producer-Seq: k, so the cluster
applies each batch exactly once however often it is retried. A batch is retried, with the same
seq, while the cluster answers 503 (honoring Retry-After) or cannot be reached; a 4xx answer
stops the run with the server's message and the lines of the batch.

The producer ID is random unless given, and printed at the start: to resume an interrupted
run, rerun with the same FILE, --batch and --producer, and --start-seq set to the first batch
that was not acknowledged (the error message says which). Batches before it are skipped.

flags:
`

func ingestMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("ingest", ingestUsage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 30*time.Second)
	cfg := ingestConfig{backoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second, plainEvery: 5 * time.Second, ttyEvery: 200 * time.Millisecond}
	fs.StringVar(&cfg.stream, "stream", "", "stream to send the events to (required)")
	fs.IntVar(&cfg.batch, "batch", 1000, "events per request")
	fs.StringVar(&cfg.producer, "producer", "", "Producer-Id of the batches (default: a new random ID, printed at the start)")
	fs.Uint64Var(&cfg.startSeq, "start-seq", 1, "first batch to send (resume): earlier batches of FILE are skipped")
	fs.DurationVar(&cfg.retryFor, "retry-for", 2*time.Minute, "give up on a batch the cluster has not accepted after retrying for this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if msg := cfg.check(len(pos)); msg != "" {
		fmt.Fprintf(stderr, "tally ingest: %s\n", msg)
		fs.Usage()
		return 2
	}
	c, err := cf.client(nil)
	if err != nil {
		return fail(stderr, "ingest", err)
	}
	cfg.file = pos[0]
	in := stdin
	if cfg.file == "-" {
		cfg.file = "stdin"
	} else {
		f, err := os.Open(cfg.file)
		if err != nil {
			return fail(stderr, "ingest", err)
		}
		defer f.Close()
		in = f
	}
	if cfg.producer == "" {
		cfg.producer = newProducerID()
	}
	fmt.Fprintf(stderr, "tally ingest: producer %s (resume an interrupted run with --producer %s --start-seq N)\n", cfg.producer, cfg.producer)
	p := newProgress(stderr, cfg.ttyEvery, cfg.plainEvery)
	st, err := ingest(ctx, c, cfg, in, p)
	p.finish()
	if err != nil {
		return fail(stderr, "ingest", err)
	}
	fmt.Fprintln(stdout, st.summary())
	return 0
}

// check returns what is wrong with the command line, or "".
func (cfg ingestConfig) check(args int) string {
	switch {
	case cfg.stream == "":
		return "--stream is required"
	case args != 1:
		return "give one events file (or - for standard input)"
	case cfg.batch < 1:
		return fmt.Sprintf("--batch must be at least 1, got %d", cfg.batch)
	case cfg.startSeq < 1:
		return "--start-seq starts at 1"
	case cfg.startSeq > 1 && cfg.producer == "":
		return "--start-seq resumes a run: give that run's --producer too"
	case len(cfg.producer) > 256:
		return "--producer is over 256 bytes"
	}
	return ""
}

// ingestConfig configures one ingest run.
type ingestConfig struct {
	stream, producer, file string
	batch                  int
	startSeq               uint64
	retryFor               time.Duration
	// backoff is the first wait between retries when the server gives no Retry-After; it
	// doubles up to maxBackoff.
	backoff, maxBackoff time.Duration
	// ttyEvery and plainEvery are how often progress is shown on a terminal and otherwise.
	ttyEvery, plainEvery time.Duration
}

// ingestStats is what a run did.
type ingestStats struct {
	events, skipped int64 // events applied; events of the batches skipped by --start-seq
	batches         uint64
	// duplicates is how many batches (of dupEvents events) the cluster had already applied.
	duplicates int
	dupEvents  int64
	retries    int
	elapsed    time.Duration
}

func (s ingestStats) summary() string {
	rate := 0.0
	if s.elapsed > 0 {
		rate = float64(s.events) / s.elapsed.Seconds()
	}
	line := fmt.Sprintf("ingested %d events in %v (%.0f events/s), %d retries", s.events, s.elapsed.Round(time.Millisecond), rate, s.retries)
	if s.duplicates > 0 {
		line += fmt.Sprintf("; %d more events in %d batches had been applied before (same producer and seq), so not again", s.dupEvents, s.duplicates)
	}
	return line
}

func newProducerID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "ingest-" + hex.EncodeToString(b)
}

// batch is one request's worth of events.
type batch struct {
	seq    uint64
	events []any // json.RawMessage each
	lines  []int // line number of each event in the file
}

func (b *batch) where() string {
	if len(b.lines) == 1 {
		return fmt.Sprintf("batch %d (line %d)", b.seq, b.lines[0])
	}
	return fmt.Sprintf("batch %d (lines %d-%d)", b.seq, b.lines[0], b.lines[len(b.lines)-1])
}

// ingest reads NDJSON events from in and sends them in batches.
func ingest(ctx context.Context, c *client.Client, cfg ingestConfig, in io.Reader, p *progress) (ingestStats, error) {
	start := time.Now()
	st, err := ingestBatches(ctx, c, cfg, in, p)
	st.elapsed = time.Since(start)
	return st, err
}

func ingestBatches(ctx context.Context, c *client.Client, cfg ingestConfig, in io.Reader, p *progress) (ingestStats, error) {
	var st ingestStats
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	resume := func(seq uint64) string {
		if seq == 1 {
			return "no batch was acknowledged"
		}
		return fmt.Sprintf("%s had been acknowledged (%d events by this run); to go on from batch %d, rerun with --producer %s --start-seq %d --batch %d",
			batchRange(seq-1), st.events+st.dupEvents, seq, cfg.producer, seq, cfg.batch)
	}
	for seq := uint64(1); ; seq++ {
		b := batch{seq: seq}
		for len(b.lines) < cfg.batch && sc.Scan() {
			line++
			text := bytes.TrimSpace(sc.Bytes())
			if len(text) == 0 {
				continue
			}
			b.lines = append(b.lines, line)
			if seq < cfg.startSeq {
				continue // resuming: this batch was sent by an earlier run
			}
			if text[0] != '{' || !json.Valid(text) {
				return st, fmt.Errorf("%s:%d: not a JSON object (each line is one event: an object with the stream's attributes)", cfg.file, line)
			}
			b.events = append(b.events, json.RawMessage(bytes.Clone(text)))
		}
		if err := sc.Err(); err != nil {
			return st, fmt.Errorf("read %s: %w", cfg.file, err)
		}
		if len(b.lines) == 0 {
			if seq <= cfg.startSeq && cfg.startSeq > 1 {
				return st, fmt.Errorf("--start-seq %d: %s has only %d batches of %d events", cfg.startSeq, cfg.file, seq-1, cfg.batch)
			}
			return st, nil
		}
		if seq < cfg.startSeq {
			st.skipped += int64(len(b.lines))
			continue
		}
		if seq == cfg.startSeq && cfg.startSeq > 1 {
			p.logf("tally ingest: skipped %s (%d events, lines 1-%d), sent by an earlier run", batchRange(seq-1), st.skipped, b.lines[0]-1)
		}
		ans, err := sendBatch(ctx, c, cfg, &b, &st, p)
		if err != nil {
			if ctx.Err() != nil {
				return st, fmt.Errorf("interrupted while sending %s; %s", b.where(), resume(seq))
			}
			return st, fmt.Errorf("%w\n%s", err, resume(seq))
		}
		st.batches++
		if ans.Duplicate {
			st.duplicates++
			st.dupEvents += int64(len(b.lines))
		} else {
			st.events += int64(len(b.lines))
		}
		p.update(st.events+st.dupEvents, false)
	}
}

// sendBatch posts one batch, retrying it with the same seq while the cluster is
// unavailable, asks to slow down, or cannot be reached.
func sendBatch(ctx context.Context, c *client.Client, cfg ingestConfig, b *batch, st *ingestStats, p *progress) (*client.IngestResult, error) {
	first := time.Now()
	backoff := cfg.backoff
	for {
		ans, err := c.Ingest(ctx, cfg.stream, b.events, client.IngestOptions{ProducerID: cfg.producer, Seq: b.seq})
		if err == nil {
			return ans, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait := backoff
		var ae *client.APIError
		switch {
		case errors.As(err, &ae) && (errors.Is(ae, client.ErrUnavailable) || errors.Is(ae, client.ErrTooManyRequests)):
			if ae.HasRetryAfter {
				wait = ae.RetryAfter
			}
		case ae != nil:
			he := refused{ae}
			msg := fmt.Sprintf("%s refused: %v", b.where(), he)
			if ae.Event != nil && *ae.Event >= 0 && *ae.Event < len(b.lines) {
				msg = fmt.Sprintf("%s:%d: event %d of %s refused: %v", cfg.file, b.lines[*ae.Event], *ae.Event, b.where(), he)
			}
			if ae.Status == http.StatusRequestEntityTooLarge {
				msg += "\nsend smaller batches with --batch"
			}
			return nil, errors.New(msg)
		case errors.Is(err, client.ErrUnavailable):
			// No node answered: the batch may or may not have been applied; the same seq
			// makes sending it again safe.
		default:
			return nil, fmt.Errorf("%s: %w", b.where(), err)
		}
		err = plain(err)
		if time.Since(first)+wait > cfg.retryFor {
			return nil, fmt.Errorf("%s: giving up after retrying for %v (--retry-for): %v", b.where(), time.Since(first).Round(time.Millisecond), err)
		}
		st.retries++
		p.logf("tally ingest: %s: %v; retry in %v", b.where(), err, wait)
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
		backoff = min(backoff*2, cfg.maxBackoff)
	}
}

// batchRange names batches 1..n: "batch 1" or "batches 1-n".
func batchRange(n uint64) string {
	if n == 1 {
		return "batch 1"
	}
	return fmt.Sprintf("batches 1-%d", n)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// progress shows how an ingest run goes on w: a line redrawn in place at most every ttyEvery
// on a terminal, else a plain line every plainEvery.
type progress struct {
	w          io.Writer
	tty        bool
	every      time.Duration
	start      time.Time
	last       time.Time
	drawn      bool // a progress line is on the terminal, unterminated
	lastEvents int64
}

func newProgress(w io.Writer, ttyEvery, plainEvery time.Duration) *progress {
	p := &progress{w: w, tty: isTerminal(w), every: plainEvery, start: time.Now()}
	if p.tty {
		p.every = ttyEvery
	}
	p.last = p.start
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update shows events sent so far, unless it was shown less than the interval ago.
func (p *progress) update(events int64, force bool) {
	now := time.Now()
	if !force && now.Sub(p.last) < p.every {
		return
	}
	p.last, p.lastEvents = now, events
	rate := 0.0
	if el := now.Sub(p.start).Seconds(); el > 0 {
		rate = float64(events) / el
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%d events sent (%.0f events/s)", events, rate)
		p.drawn = true
		return
	}
	fmt.Fprintf(p.w, "tally ingest: %d events sent (%.0f events/s)\n", events, rate)
}

// logf prints a message line, keeping the progress line below it on a terminal.
func (p *progress) logf(format string, args ...any) {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.drawn {
		p.update(p.lastEvents, true)
	}
}

// finish ends the progress line on a terminal.
func (p *progress) finish() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
