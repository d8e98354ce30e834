package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// defaultAddr is where the client commands look for a node unless --addr or TALLY_ADDR say
// otherwise.
const defaultAddr = "http://127.0.0.1:7070"

// maxResponseBytes bounds a response body the client reads.
const maxResponseBytes = 64 << 20

// client talks to one node's HTTP API. Every call takes a context and is bounded by the
// client's timeout.
type client struct {
	base    string // scheme://host:port, no trailing slash
	http    *http.Client
	timeout time.Duration
}

// newClient returns a client for addr ("http://host:port", or just "host:port").
func newClient(addr string, timeout time.Duration) (*client, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil, errors.New("--addr is empty: give a node's HTTP address such as " + defaultAddr)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--addr %q is not an HTTP address such as %s", addr, defaultAddr)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %v", timeout)
	}
	return &client{base: strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), http: &http.Client{}, timeout: timeout}, nil
}

// response is a read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// httpError is a non-2xx answer. Message is the server's own error text.
type httpError struct {
	Method, URL string
	Status      int
	Message     string
	// RetryAfter is the Retry-After header; valid when HasRetryAfter.
	RetryAfter    time.Duration
	HasRetryAfter bool
	// Event is the index of the refused event in an ingest batch, when the server names it.
	Event *int
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, http.StatusText(e.Status))
}

// netError is a request that got no HTTP answer at all (connection refused, reset, timeout).
type netError struct {
	Method, URL string
	Err         error
}

func (e *netError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err)
}

func (e *netError) Unwrap() error { return e.Err }

// do sends a request and reads the answer. A non-2xx status is an *httpError; no answer at
// all is a *netError (or ctx's error once ctx is done).
func (c *client) do(ctx context.Context, method, path string, header http.Header, body []byte) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.http.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var data []byte
		if data, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes)); err == nil {
			r := &response{status: resp.StatusCode, header: resp.Header, body: data}
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return r, newHTTPError(method, target, r)
			}
			return r, nil
		}
	}
	// The caller's own cancellation is not a network problem.
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // it repeats the method and URL
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v (--timeout)", c.timeout)
	}
	return nil, &netError{Method: method, URL: target, Err: err}
}

// newHTTPError reads the server's message out of an error body: {"error":...} from /v1,
// {"type":"error","message":...} from the store API, else the body text itself.
func newHTTPError(method, target string, r *response) *httpError {
	e := &httpError{Method: method, URL: target, Status: r.status}
	var body struct {
		Error   *string `json:"error"`
		Message *string `json:"message"`
		Event   *int    `json:"event"`
	}
	switch {
	case json.Unmarshal(r.body, &body) == nil && body.Error != nil:
		e.Message, e.Event = *body.Error, body.Event
	case body.Message != nil:
		e.Message = *body.Message
	default:
		e.Message = strings.TrimSpace(string(r.body))
	}
	if e.Message == "" {
		e.Message = "(empty response body)"
	}
	if v := strings.TrimSpace(r.header.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			e.RetryAfter, e.HasRetryAfter = time.Duration(n)*time.Second, true
		} else if t, err := http.ParseTime(v); err == nil {
			e.RetryAfter, e.HasRetryAfter = max(time.Until(t), 0), true
		}
	}
	return e
}

// getJSON GETs path and decodes the JSON answer into v.
func (c *client) getJSON(ctx context.Context, path string, v any) error {
	r, err := c.do(ctx, http.MethodGet, path, http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return err
	}
	return decodeBody(r, v)
}

func decodeBody(r *response, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("unexpected answer from the server (%v): %.200s", err, r.body)
	}
	return nil
}

// clientFlags are the flags every client command takes.
type clientFlags struct {
	addr    string
	timeout time.Duration
	ca      string // PEM file of the CA that signed the nodes' certificates
	user    string // USER:PASSWORD for Basic auth
}

func addClientFlags(fs *flag.FlagSet, cf *clientFlags, timeout time.Duration) {
	addr := os.Getenv("TALLY_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	fs.StringVar(&cf.addr, "addr", addr, "HTTP address of any node of the cluster, https:// for nodes serving HTTPS (env TALLY_ADDR)")
	fs.DurationVar(&cf.timeout, "timeout", timeout, "give up on a request after this long")
	fs.StringVar(&cf.ca, "ca", os.Getenv("TALLY_CA"), "CA certificate (PEM) that signed the nodes' certificates, to verify https:// nodes (env TALLY_CA; default: the system's roots)")
	fs.StringVar(&cf.user, "user", "", "USER:PASSWORD sent with every request (HTTP Basic auth; env TALLY_USER)")
}

func (cf clientFlags) client() (*client, error) {
	c, err := newClient(cf.addr, cf.timeout)
	if err != nil {
		return nil, err
	}
	user := cf.user
	if user == "" {
		user = os.Getenv("TALLY_USER")
	}
	if err := c.secure(cf.ca, user); err != nil {
		return nil, err
	}
	return c, nil
}

// secure makes c verify https:// nodes against the CA in caFile (when given) and send
// user, USER:PASSWORD, as Basic auth on every request (when given).
func (c *client) secure(caFile, user string) error {
	var name, password string
	if user != "" {
		var ok bool
		if name, password, ok = strings.Cut(user, ":"); !ok || name == "" {
			return errors.New("--user (or TALLY_USER) must be USER:PASSWORD")
		}
	}
	var rt http.RoundTripper = http.DefaultTransport
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca %s holds no PEM certificate", caFile)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		rt = t
	}
	if name != "" {
		rt = basicAuth{next: rt, user: name, password: password}
	}
	c.http.Transport = rt
	return nil
}

// basicAuth adds a user's credentials to every request.
type basicAuth struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

// parseArgs parses flags that may come before, between or after the positional arguments
// (`tally query 'from …' --app A` works), and returns the positional arguments. "--" ends
// the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag argument, or after "--".
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet returns a flag set that prints usage (text, then the flags) to stderr.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return fs
}

// flagExit maps a flag parse error to an exit code: 0 for -h, 2 otherwise.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// fail prints a command's error and returns exit code 1.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "tally %s: %v\n", cmd, err)
	var ne *netError
	var he *httpError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ua):
		fmt.Fprintf(stderr, "tally %s: the node's certificate is not signed by a CA this client trusts: give the cluster's CA with --ca or TALLY_CA.\n", cmd)
	case errors.As(err, &ne):
		fmt.Fprintf(stderr, "tally %s: is a node running there? Set --addr or TALLY_ADDR to a node's HTTP address.\n", cmd)
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		fmt.Fprintf(stderr, "tally %s: the node wants credentials: give --user USER:PASSWORD or TALLY_USER.\n", cmd)
	}
	return 1
}
