package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	c, err := cf.client()
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
	return fail(stderr, "tail", err)
}

var errTailUsage = errors.New("bad request")

type tailer struct {
	c       *client
	stream  string
	last    string // the last ID printed (or --from)
	group   int
	count   int
	printed int
	out     io.Writer
	errOut  io.Writer
}

// run subscribes, and subscribes again after the last ID printed whenever the stream ends.
func (t *tailer) run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		progressed, err := t.once(ctx)
		if err == nil && t.count > 0 && t.printed >= t.count {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var he *httpError
		if errors.As(err, &he) && !retryableStatus(he.Status) {
			if he.Status == http.StatusBadRequest {
				return fmt.Errorf("%w: %s", errTailUsage, he.Message)
			}
			return err
		}
		if progressed {
			backoff = 100 * time.Millisecond
		}
		if err != nil {
			fmt.Fprintf(t.errOut, "tally tail: %v; reconnecting in %s after %s\n", err, backoff, orStart(t.last))
		}
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

// once runs one subscription until it ends; progressed reports that it printed something.
func (t *tailer) once(ctx context.Context) (progressed bool, err error) {
	q := url.Values{}
	if t.last != "" {
		q.Set("from", t.last)
	}
	if t.group >= 0 {
		q.Set("group", strconv.Itoa(t.group))
	}
	target := t.c.base + "/v1/streams/" + url.PathEscape(t.stream) + "/subscribe"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := t.c.http.Do(req)
	if err != nil {
		return false, &netError{Method: http.MethodGet, URL: target, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return false, newHTTPError(http.MethodGet, target, &response{status: resp.StatusCode, header: resp.Header, body: body})
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var id, event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				if event == "error" {
					var msg string
					_ = json.Unmarshal([]byte(data), &msg)
					return progressed, fmt.Errorf("the subscription ended: %s", msg)
				}
				if _, err := fmt.Fprintln(t.out, data); err != nil {
					return progressed, err
				}
				if id != "" {
					t.last = id
				}
				progressed = true
				t.printed++
				if t.count > 0 && t.printed >= t.count {
					return progressed, nil
				}
			}
			id, event, data = "", "", ""
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(line[3:])
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimPrefix(line[5:], " ")
		}
	}
	if err := sc.Err(); err != nil {
		return progressed, &netError{Method: http.MethodGet, URL: target, Err: err}
	}
	return progressed, errors.New("the node closed the subscription")
}
