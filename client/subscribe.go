package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Subscription backoff between reconnections, and how long a connection may stay silent
// (the server sends a keep-alive comment every 15s) before it is taken for dead.
const (
	subMinBackoff = 50 * time.Millisecond
	subMaxBackoff = 2 * time.Second
	subIdle       = 45 * time.Second
)

// Output is one output of a query, as a subscription delivers it.
type Output struct {
	// ID is GROUP-INDEX-SEQ: its position in the group's log. Subscribe from it to get
	// the outputs after it.
	ID     string `json:"id"`
	Stream string `json:"stream"`
	App    string `json:"app"`
	// TS is the output's time, in milliseconds since the epoch.
	TS int64 `json:"ts"`
	// Expired marks an expired event (a window's event leaving it).
	Expired bool `json:"expired"`
	// Data is the output's attributes as a JSON object.
	Data json.RawMessage `json:"data"`
	// Raw is the whole output as the server sent it (the event's data line): the JSON
	// object the fields above are read from, for a caller that passes it on unchanged.
	Raw json.RawMessage `json:"-"`
}

// Subscription reads the outputs of one output stream, from one group, as Server-Sent
// Events. When the connection drops it reconnects, to the next node if need be, from the
// last output Next returned, so no output is missed or returned twice. It is for one
// goroutine, except Close, which may be called from any.
type Subscription struct {
	c      *Client
	stream string
	group  int    // the ?group= to ask for, or -1
	last   string // ID of the last output returned, or the position the stream was joined at

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu       sync.Mutex
	body     io.ReadCloser
	rd       *bufio.Reader
	idle     *time.Timer
	dropConn context.CancelFunc // ends the current connection
	node     int
}

// ErrOutputsGone is a subscription's position that the cluster no longer retains (410, or
// a subscriber that fell that far behind): subscribe again from "earliest" and accept the
// gap.
var ErrOutputsGone = errors.New("outputs no longer retained")

// Subscribe follows the outputs of stream (a stream a query inserts into) after from: the
// ID of the last output the caller has, "earliest" for every output the cluster retains,
// or "" for new outputs only. A cluster of several groups keeps each group's outputs
// apart: from's ID names the group, and "" or "earliest" follow group 0. Subscribe
// returns once a node has accepted the subscription; ctx bounds that, not the
// subscription (Close ends it).
func (c *Client) Subscribe(ctx context.Context, stream, from string) (*Subscription, error) {
	return c.subscribe(ctx, stream, -1, from)
}

// SubscribeGroup is Subscribe to the outputs of partition group group (from 0), in a
// cluster of several groups; from, when an ID, must be one of that group's.
func (c *Client) SubscribeGroup(ctx context.Context, stream string, group int, from string) (*Subscription, error) {
	if group < 0 {
		return nil, fmt.Errorf("client: SubscribeGroup: group %d: groups start at 0", group)
	}
	return c.subscribe(ctx, stream, group, from)
}

func (c *Client) subscribe(ctx context.Context, stream string, group int, from string) (*Subscription, error) {
	if stream == "" {
		return nil, errors.New("client: Subscribe needs a stream name")
	}
	s := &Subscription{c: c, stream: stream, group: group, last: from, node: c.pick()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.connect(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", stream, err)
	}
	return s, nil
}

// connect opens a connection from s.last, trying each node once; ctx bounds the
// attempts, not the connection.
func (s *Subscription) connect(ctx context.Context) error {
	var last error
	for range s.c.nodes {
		node := s.c.nodes[s.node]
		err := s.connectTo(ctx, node)
		if err == nil {
			s.c.noteSuccess(s.node)
			return nil
		}
		if s.ctx.Err() != nil {
			return ErrSubscriptionClosed
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !failover(err) {
			return err
		}
		s.c.noteFailure(s.node, err)
		last = err
		s.node = (s.node + 1) % len(s.c.nodes)
	}
	return unavailable(last)
}

// connectTo opens a connection to node.
func (s *Subscription) connectTo(ctx context.Context, node string) error {
	q := url.Values{}
	if s.group >= 0 {
		q.Set("group", strconv.Itoa(s.group))
	}
	if s.last != "" {
		q.Set("from", s.last)
	}
	cctx, cancel := context.WithCancel(s.ctx)
	r := &request{method: http.MethodGet, path: "/v1/streams/" + url.PathEscape(s.stream) + "/subscribe", query: q,
		header: http.Header{"Accept": {"text/event-stream"}}}
	if s.last != "" && s.last != "earliest" {
		r.header.Set("Last-Event-ID", s.last)
	}
	req, err := s.c.newRequest(cctx, node, r)
	if err != nil {
		cancel()
		return err
	}
	// The answer's headers (and the comment that starts the body) must come within the
	// timeout, and before ctx ends; the events may take forever.
	headers := time.AfterFunc(s.c.timeout, cancel)
	defer headers.Stop()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	resp, err := s.c.http.Do(req)
	if err != nil {
		cancel()
		if s.ctx.Err() != nil || ctx.Err() != nil {
			return context.Canceled
		}
		return &netError{Method: r.method, URL: req.URL.String(), Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cancel()
		ae := newAPIError(r.method, req.URL.String(), resp.StatusCode, resp.Header, b)
		if ae.Status == http.StatusGone {
			return fmt.Errorf("%w: %w", ErrOutputsGone, ae)
		}
		return ae
	}
	rd := bufio.NewReader(resp.Body)
	if s.last == "" || s.last == "earliest" {
		// The body starts with a comment naming the position the server starts after:
		// resuming from it later misses nothing, even before the first output.
		if err := s.readStart(rd); err != nil {
			resp.Body.Close()
			cancel()
			return &netError{Method: r.method, URL: req.URL.String(), Err: err}
		}
	}
	s.mu.Lock()
	s.body, s.rd, s.dropConn = resp.Body, rd, cancel
	s.idle = time.AfterFunc(subIdle, cancel)
	s.mu.Unlock()
	return nil
}

// readStart reads the subscription's opening comment, ": stream S of group G after ID",
// and takes ID as the last position.
func (s *Subscription) readStart(rd *bufio.Reader) error {
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read the start of the subscription: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return nil
		}
		if _, pos, ok := strings.Cut(line, " after "); ok && strings.HasPrefix(line, ":") {
			s.last = strings.TrimSpace(pos)
		}
	}
}

// disconnect drops the current connection, if any.
func (s *Subscription) disconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.body == nil {
		return
	}
	s.idle.Stop()
	s.dropConn()
	s.body.Close()
	s.body, s.rd = nil, nil
}

// Next returns the next output, waiting for one until ctx is done. A dropped connection
// is reopened (with growing pauses, at most 2s, while no node accepts it) from the last
// output returned. It fails when the subscription is closed, ctx is done, or the cluster
// refuses the subscription (unknown stream, ErrOutputsGone, credentials).
func (s *Subscription) Next(ctx context.Context) (Output, error) {
	stop := context.AfterFunc(ctx, s.disconnect)
	defer stop()
	backoff := subMinBackoff
	for {
		if err := s.ctx.Err(); err != nil {
			return Output{}, fmt.Errorf("subscription to %s: %w", s.stream, ErrSubscriptionClosed)
		}
		if err := ctx.Err(); err != nil {
			return Output{}, err
		}
		s.mu.Lock()
		rd := s.rd
		s.mu.Unlock()
		if rd == nil {
			err := s.connect(ctx)
			switch {
			case err == nil:
				backoff = subMinBackoff
				continue
			case s.ctx.Err() != nil || ctx.Err() != nil:
				continue
			case !errors.Is(err, ErrUnavailable):
				return Output{}, fmt.Errorf("resubscribe to %s after %s: %w", s.stream, s.last, err)
			}
			s.c.logger.Debug("tally subscription: no node accepted; retrying", "stream", s.stream, "wait", backoff, "err", err)
			if err := sleep(ctx, backoff); err != nil {
				return Output{}, err
			}
			backoff = min(2*backoff, subMaxBackoff)
			continue
		}
		out, err := s.read(rd)
		if err == nil {
			s.last = out.ID
			return out, nil
		}
		if errors.Is(err, ErrOutputsGone) {
			s.disconnect()
			return Output{}, fmt.Errorf("subscription to %s after %s: %w", s.stream, s.last, err)
		}
		s.c.logger.Debug("tally subscription dropped; reconnecting", "stream", s.stream, "after", s.last, "err", err)
		s.disconnect()
		s.node = s.c.after(s.node)
	}
}

// ErrSubscriptionClosed is returned by Next after Close.
var ErrSubscriptionClosed = errors.New("subscription closed")

// read reads events from rd until an output, and returns it.
func (s *Subscription) read(rd *bufio.Reader) (Output, error) {
	var id, event string
	var data []byte
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return Output{}, err
		}
		s.mu.Lock()
		if s.idle != nil {
			s.idle.Reset(subIdle)
		}
		s.mu.Unlock()
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			// The end of an event.
			if event == "" || event == "output" || event == "expired" {
				if len(data) > 0 {
					var out Output
					if err := json.Unmarshal(data, &out); err != nil {
						return Output{}, fmt.Errorf("malformed output %s: %w", id, err)
					}
					if out.ID == "" {
						out.ID = id
					}
					out.Raw = append(json.RawMessage(nil), data...)
					return out, nil
				}
			} else if event == "error" {
				var msg string
				if json.Unmarshal(data, &msg) != nil {
					msg = string(data)
				}
				return Output{}, fmt.Errorf("%w: %s", ErrOutputsGone, msg)
			}
			id, event, data = "", "", data[:0]
			continue
		}
		if line[0] == ':' {
			continue // a comment: keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			id = string(value)
		case "event":
			event = string(value)
		case "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
	}
}

// Last returns the ID of the last output Next returned (or where the subscription
// started): the from of a subscription that goes on from here.
func (s *Subscription) Last() string { return s.last }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.cancel()
	s.disconnect()
}
