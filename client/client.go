package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds one request (not a subscription) unless Options.Timeout says
// otherwise.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes bounds a response body the client reads.
const maxResponseBytes = 64 << 20

// Options configures a Client. The zero value is usable: plain HTTP, no credentials,
// DefaultTimeout.
type Options struct {
	// TLS configures HTTPS connections (client certificates, roots, server name). Give it
	// or CAFile, not both; with neither, https:// nodes are checked against the system's
	// roots.
	TLS *tls.Config
	// CAFile is a PEM file of the certificate authorities that sign the nodes'
	// certificates: the only ones trusted (the system's roots are not).
	CAFile string
	// User and Password are sent with HTTP Basic authentication when User is set.
	User, Password string
	// Token is sent as "Authorization: Bearer TOKEN". Give it or User, not both.
	Token string
	// Timeout bounds each request, retries excluded (DefaultTimeout when zero). A
	// subscription's connection is bounded only while it waits for the answer's headers.
	Timeout time.Duration
	// MaxIdleConnsPerNode is how many idle connections to each node the client keeps
	// open for the next requests (default 32): raise it for more concurrent requests.
	MaxIdleConnsPerNode int
	// HTTPClient, when set, sends every request instead of the client's own; TLS, CAFile
	// and MaxIdleConnsPerNode are then ignored (configure its transport instead).
	HTTPClient *http.Client
	// Logger receives retries and failovers at debug and warn level; nil discards them.
	Logger *slog.Logger
}

// Client talks to a Tally cluster through the HTTP API of its nodes. Requests go to the
// nodes round robin; a node that cannot be reached or answers 503 is skipped for the next
// one. A Client is safe for concurrent use by any number of goroutines, and so are the
// Publishers it makes; a Subscription is for one goroutine.
type Client struct {
	nodes   []string // base URLs, no trailing slash
	http    *http.Client
	auth    string // Authorization header value, or ""
	timeout time.Duration
	logger  *slog.Logger
	next    atomic.Uint64 // round robin over nodes
	// down[i] is when (Unix nanoseconds) node i, which could not be reached, may be
	// tried again first: until then round robin passes it over.
	down []atomic.Int64
}

// nodeDownFor is how long a node that could not be reached is passed over.
const nodeDownFor = time.Second

// New returns a client for the nodes at addrs, base URLs such as "http://10.0.0.1:7070" or
// "https://tally-1.example:7070" (a bare host:port means http://host:port).
func New(addrs []string, opts Options) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("client: no node addresses: give at least one, such as http://127.0.0.1:7070")
	}
	c := &Client{timeout: opts.Timeout, logger: opts.Logger}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.timeout < 0 {
		return nil, fmt.Errorf("client: Timeout must not be negative, got %v", opts.Timeout)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	for _, a := range addrs {
		base, err := parseAddr(a)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, base)
	}
	c.down = make([]atomic.Int64, len(c.nodes))
	switch {
	case opts.User != "" && opts.Token != "":
		return nil, errors.New("client: give User and Password or Token, not both")
	case opts.User != "":
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(opts.User, opts.Password)
		c.auth = req.Header.Get("Authorization")
	case opts.Password != "":
		return nil, errors.New("client: Password without User")
	case opts.Token != "":
		c.auth = "Bearer " + opts.Token
	}
	if opts.HTTPClient != nil {
		c.http = opts.HTTPClient
		return c, nil
	}
	tc, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A publisher and its queries keep a few connections to every node busy: keep them
	// open rather than dialling again (the default keeps two per node).
	t.MaxIdleConnsPerHost = 32
	if opts.MaxIdleConnsPerNode > 0 {
		t.MaxIdleConnsPerHost = opts.MaxIdleConnsPerNode
	}
	t.MaxIdleConns = max(t.MaxIdleConns, t.MaxIdleConnsPerHost*len(c.nodes))
	t.TLSClientConfig = tc
	t.ForceAttemptHTTP2 = tc != nil
	// Redirects are never part of the API; the request bodies could not be resent anyway.
	c.http = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

// parseAddr checks a node address and returns its base URL.
func parseAddr(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return "", errors.New("client: empty node address")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("client: node address %q is not an http:// or https:// URL such as http://127.0.0.1:7070", a)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// tlsConfig builds the TLS configuration of Options (nil when it has none).
func tlsConfig(opts Options) (*tls.Config, error) {
	switch {
	case opts.TLS != nil && opts.CAFile != "":
		return nil, errors.New("client: give TLS or CAFile, not both (add the CA to TLS.RootCAs)")
	case opts.TLS != nil:
		return opts.TLS.Clone(), nil
	case opts.CAFile == "":
		return nil, nil
	}
	pem, err := os.ReadFile(opts.CAFile)
	if err != nil {
		return nil, fmt.Errorf("client: read CAFile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client: CAFile %s holds no PEM certificate", opts.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Nodes returns the base URLs of the nodes the client sends to.
func (c *Client) Nodes() []string { return append([]string(nil), c.nodes...) }

// pick returns the index of the node the next request starts at: the next in turn that
// is not passed over.
func (c *Client) pick() int {
	return c.upFrom(int((c.next.Add(1) - 1) % uint64(len(c.nodes))))
}

// after returns the node to fail over to after node i: the next that is not passed over.
func (c *Client) after(i int) int { return c.upFrom((i + 1) % len(c.nodes)) }

// upFrom returns the first node from i on (wrapping) that is not passed over, or i when
// all are.
func (c *Client) upFrom(i int) int {
	now := time.Now().UnixNano()
	for k := range c.nodes {
		j := (i + k) % len(c.nodes)
		if c.down[j].Load() <= now {
			return j
		}
	}
	return i
}

// noteFailure passes node i over for a while when err says it could not be reached.
func (c *Client) noteFailure(i int, err error) {
	var ne *netError
	if errors.As(err, &ne) {
		c.down[i].Store(time.Now().Add(nodeDownFor).UnixNano())
	}
}

// noteSuccess ends passing node i over.
func (c *Client) noteSuccess(i int) {
	if c.down[i].Load() != 0 {
		c.down[i].Store(0)
	}
}

// request is one API call, sent to one node at a time.
type request struct {
	method, path string
	query        url.Values
	header       http.Header
	body         []byte
}

// response is a 2xx answer, read whole.
type response struct {
	node   string
	status int
	header http.Header
	body   []byte
}

// send sends r to node and reads the answer. A non-2xx answer is an *APIError; no answer
// is a *netError, or ctx's error once ctx is done.
func (c *Client) send(ctx context.Context, node string, r *request) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.newRequest(rctx, node, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var b []byte
		if b, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes)); err == nil {
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return nil, newAPIError(r.method, req.URL.String(), resp.StatusCode, resp.Header, b)
			}
			return &response{node: node, status: resp.StatusCode, header: resp.Header, body: b}, nil
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // it repeats the method and URL
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", c.timeout, err)
	}
	return nil, &netError{Method: r.method, URL: req.URL.String(), Err: err}
}

// newRequest builds r for node with the client's credentials.
func (c *Client) newRequest(ctx context.Context, node string, r *request) (*http.Request, error) {
	target := node + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("client: build request %s %s: %w", r.method, target, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	return req, nil
}

// do sends r to one node after another, starting round robin, until one answers with
// anything but 503 or a network error: each node is tried once. When none answers, the
// error matches ErrUnavailable.
func (c *Client) do(ctx context.Context, r *request) (*response, error) {
	i := c.pick()
	var last error
	for range c.nodes {
		resp, err := c.send(ctx, c.nodes[i], r)
		if err == nil {
			c.noteSuccess(i)
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !failover(err) {
			return nil, err
		}
		c.noteFailure(i, err)
		c.logger.Debug("tally request failed; trying the next node", "method", r.method, "path", r.path, "node", c.nodes[i], "err", err)
		last = err
		i = (i + 1) % len(c.nodes)
	}
	return nil, unavailable(last)
}

// failover says whether another node may answer what err's node could not: it was not
// reached, or answered that it cannot serve right now.
func failover(err error) bool {
	var ne *netError
	var ae *APIError
	switch {
	case errors.As(err, &ne):
		return true
	case errors.As(err, &ae):
		return ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusBadGateway || ae.Status == http.StatusGatewayTimeout
	}
	return false
}

// retryable says whether the same request may succeed later: failover errors and 429.
func retryable(err error) bool {
	var ae *APIError
	return failover(err) || (errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests)
}

// unavailable wraps the last error of a request no node could serve so that it matches
// ErrUnavailable (an *APIError of 503 matches it already).
func unavailable(last error) error {
	if errors.Is(last, ErrUnavailable) {
		return last
	}
	return &unavailableError{err: last}
}

// getJSON GETs path from the first node that answers and decodes the answer into v.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, v any) error {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, query: query, header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return err
	}
	return decode(resp, v)
}

// decode reads a JSON answer into v.
func decode(resp *response, v any) error {
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("client: unexpected answer from %s: %w: %.200s", resp.node, err, resp.body)
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
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
