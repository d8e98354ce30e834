package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tally-db/tally/client"
)

const tailUsage = `usage: tally tail STREAM [--from ID|earliest] [--group G] [--count N] [--addr URL]

Follows a query output stream (GET /v1/streams/STREAM/subscribe, Server-Sent Events) and
prints one JSON object per output (NDJSON):
  {"id":"G-INDEX-SEQ","stream":"Alerts","app":"A","ts":MS,"expired":false,"data":{...}}
Without --from it prints new outputs only; --from ID resumes after that output; --from
earliest replays everything the cluster still retains. On a lost connection or an
unavailable node it reconnects (backoff up to 5 s) after the last ID printed, so nothing is
missed or printed twice. With several groups, each group is a separate stream (--group,
default 0, or the group of --from's ID).

`

// tailMaxBackoff caps the reconnect backoff.
const tailMaxBackoff = 5 * time.Second

func tailMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tail", tailUsage, stderr)
	var cf clientFlags
	addClientFlags(fs, &cf, 10*time.Second)
	from := fs.String("from", "", "resume after this output ID (G-INDEX-SEQ), or 'earliest'")
	group := fs.Int("group", -1, "the group to follow (default: the group of --from, else 0)")
	count := fs.Int("count", 0, "exit after printing this many outputs (0: follow until interrupted)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, "tally tail: give one stream name\n\n")
		fs.Usage()
		return 2
	}
	// The subscription reconnects by itself; its log says so on stderr.
	c, err := cf.client(slog.New(&lineHandler{prefix: "tally tail: ", w: stderr}))
	if err != nil {
		fmt.Fprintf(stderr, "tally tail: %v\n", err)
		return 2
	}
	t := tailer{c: c, stream: pos[0], last: *from, group: *group, count: *count, out: stdout, errOut: stderr}
	err = t.run(ctx)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return 0
	case errors.Is(err, errTailUsage):
		fmt.Fprintf(stderr, "tally tail: %v\n", err)
		return 2
	}
	return fail(stderr, "tail", plain(err))
}

var errTailUsage = errors.New("bad request")

type tailer struct {
	c       *client.Client
	stream  string
	last    string // the last ID printed (or --from, or where the subscription started)
	group   int
	count   int
	printed int
	out     io.Writer
	errOut  io.Writer
}

// run subscribes, and subscribes again after the last ID printed when no node accepts the
// subscription. A subscription reconnects by itself after a dropped connection.
func (t *tailer) run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		progressed, err := t.once(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *client.APIError
		switch {
		case errors.Is(err, client.ErrOutputsGone):
			return err
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			return fmt.Errorf("%w: %s", errTailUsage, ae.Message)
		case !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, client.ErrTooManyRequests):
			return err
		}
		if progressed {
			backoff = 100 * time.Millisecond
		}
		fmt.Fprintf(t.errOut, "tally tail: %v; reconnecting in %s after %s\n", plain(err), backoff, orStart(t.last))
		if err := sleepCtx(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, tailMaxBackoff)
	}
}

func orStart(id string) string {
	if id == "" {
		return "the current end"
	}
	return id
}

// once runs one subscription until --count outputs are printed (nil) or it fails;
// progressed reports that it printed something.
func (t *tailer) once(ctx context.Context) (progressed bool, err error) {
	var sub *client.Subscription
	if t.group >= 0 {
		sub, err = t.c.SubscribeGroup(ctx, t.stream, t.group, t.last)
	} else {
		sub, err = t.c.Subscribe(ctx, t.stream, t.last)
	}
	if err != nil {
		return false, err
	}
	defer sub.Close()
	for {
		out, err := sub.Next(ctx)
		t.last = sub.Last()
		if err != nil {
			return progressed, err
		}
		if _, err := fmt.Fprintf(t.out, "%s\n", out.Raw); err != nil {
			return progressed, err
		}
		progressed = true
		t.printed++
		if t.count > 0 && t.printed >= t.count {
			return progressed, nil
		}
	}
}

// lineHandler writes log records as one line each: prefix, message, then the attributes.
type lineHandler struct {
	prefix string
	w      io.Writer
	mu     sync.Mutex
	attrs  []slog.Attr
}

func (h *lineHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(h.prefix)
	// The client's messages start with "tally", which the prefix says already.
	b.WriteString(strings.TrimPrefix(r.Message, "tally "))
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{prefix: h.prefix, w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
