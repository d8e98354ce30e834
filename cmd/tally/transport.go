package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/security"
)

// defaultMaxConns is --max-conns's default.
const defaultMaxConns = 4096

// httpLimits bound the API server's connections. A handler's request is also bounded by
// read: past it the connection's read deadline cancels the request's context. Streaming
// requests (subscriptions) are exempt from read and write (streamingRequest).
type httpLimits struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}

// defaultHTTPLimits: reading a 16 MiB body may take 60 s (280 KB/s).
var defaultHTTPLimits = httpLimits{readHeader: 10 * time.Second, read: 60 * time.Second, write: 90 * time.Second,
	idle: 2 * time.Minute, maxHeaderBytes: 64 << 10}

// insecureWarnEvery is how often a node exposed with --insecure says so.
const insecureWarnEvery = time.Minute

// validateSecurity checks the transport security flags together.
func (c serveConfig) validateSecurity() []error {
	var errs []error
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together: give both (this node's certificate and its key) or neither"))
	}
	if c.TLSCA != "" && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-ca needs --tls-cert and --tls-key: this node's own certificate, signed by that CA"))
	}
	if c.Auth != "" && c.TLSCA == "" && c.ClusterKey == "" {
		errs = append(errs, errors.New("--auth: nodes need an identity: give --tls-ca or --cluster-key"))
	}
	if c.TLSCert != "" {
		for _, u := range c.Join {
			if strings.HasPrefix(u, "http://") {
				errs = append(errs, fmt.Errorf("--join %q: nodes with --tls-cert serve HTTPS only: use https://", u))
			}
		}
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("--max-conns %d: must be at least 1", c.MaxConns))
	}
	if _, err := c.exposure(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// exposure applies "safe by default": a node with an HTTP or Raft address that is not a
// loopback address must have --auth, --tls-cert, --tls-key and --tls-ca, unless --insecure
// says otherwise, in which case warning says what is missing.
func (c serveConfig) exposure() (warning string, err error) {
	var public []string
	for _, a := range [][2]string{{"--http-addr", c.HTTPAddr}, {"--raft-addr", c.RaftAddr}} {
		if !isLoopback(a[1]) {
			public = append(public, a[0]+" "+a[1])
		}
	}
	if len(public) == 0 {
		return "", nil
	}
	var missing []string
	for _, f := range [][2]string{{"--auth", c.Auth}, {"--tls-cert", c.TLSCert}, {"--tls-key", c.TLSKey}, {"--tls-ca", c.TLSCA}} {
		if f[1] == "" {
			missing = append(missing, f[0])
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	what := fmt.Sprintf("%s not on a loopback address, without %s", strings.Join(public, " and "), strings.Join(missing, ", "))
	if c.Insecure {
		return "this node is reachable from the network unprotected (--insecure): " + what, nil
	}
	return "", fmt.Errorf("refusing to listen with %s: anyone who reaches this node could read, change or take over the cluster; give %s, or --insecure to run unprotected anyway",
		what, strings.Join(missing, ", "))
}

// isLoopback reports whether a host:port listens on loopback only: a loopback IP or
// "localhost". Any other name, and an empty or unspecified host (every interface), is not.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnInsecure logs warning now and every period until ctx ends.
func warnInsecure(ctx context.Context, warning string, every time.Duration, logger *slog.Logger) {
	logger.Warn(warning)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			logger.Warn(warning)
		}
	}
}

// transport is how this node's links to other nodes are protected and dialed.
type transport struct {
	dial raftnode.Dialer      // nil: directly
	tls  *security.TLS        // nil: no TLS
	key  *security.ClusterKey // nil: no cluster key
}

// loadTransport reads the TLS files and the cluster key the configuration names.
func loadTransport(cfg serveConfig, dial raftnode.Dialer, logger *slog.Logger) (*transport, error) {
	t := &transport{dial: dial}
	if cfg.TLSCert != "" {
		tl, err := security.Load(security.Files{Cert: cfg.TLSCert, Key: cfg.TLSKey, CA: cfg.TLSCA}, logger)
		if err != nil {
			return nil, err
		}
		t.tls = tl
	}
	if cfg.ClusterKey != "" {
		k, err := security.LoadClusterKey(cfg.ClusterKey)
		if err != nil {
			return nil, err
		}
		t.key = k
	}
	return t, nil
}

// muxOptions are the Raft port's options: mutual TLS with a CA, the cluster key, the cap.
func (t *transport) muxOptions(maxConns int) []raftnode.MuxOption {
	opts := []raftnode.MuxOption{raftnode.WithDialer(t.dial), raftnode.WithMaxConns(maxConns)}
	if t.tls != nil && t.tls.HasCA() {
		opts = append(opts, raftnode.WithTLS(t.tls.RaftServerConfig(), t.tls.ClientConfig()))
	}
	if t.key != nil {
		opts = append(opts, raftnode.WithClusterKey(t.key))
	}
	return opts
}

// listener caps ln's open connections and, with a certificate, makes it speak TLS only.
func (t *transport) listener(ln net.Listener, maxConns int) net.Listener {
	ln = security.LimitListener(ln, maxConns)
	if t.tls != nil {
		ln = tls.NewListener(ln, t.tls.ServerConfig())
	}
	return ln
}

// clientTLS is the configuration of HTTPS requests to other nodes; nil without TLS.
func (t *transport) clientTLS() *tls.Config {
	if t.tls == nil {
		return nil
	}
	return t.tls.ClientConfig()
}

// apiConfig sets the API's node-to-node security.
func (t *transport) apiConfig(acfg *httpapi.Config) {
	acfg.DialContext = t.dial
	acfg.TLSClient = t.clientTLS()
	if t.key != nil {
		acfg.NodeCredentials = t.key.SetHeader
	}
	acfg.NodeIdentity = t.nodeIdentity()
}

// nodeIdentity tells requests from nodes: a CA-verified client certificate, or the cluster
// key's header. nil when neither is configured.
func (t *transport) nodeIdentity() func(*http.Request) bool {
	hasCA := t.tls != nil && t.tls.HasCA()
	switch {
	case hasCA && t.key != nil:
		return func(r *http.Request) bool { return security.IsNode(r) || t.key.Valid(r) }
	case hasCA:
		return security.IsNode
	case t.key != nil:
		return t.key.Valid
	}
	return nil
}

// client is an HTTP client for this node's own requests to other nodes (join, the
// cluster's shape): through the dialer, with the TLS client configuration and the cluster
// key.
func (t *transport) client(timeout time.Duration) *http.Client {
	c := nodeClient(timeout, t.dial)
	if t.tls == nil && t.key == nil {
		return c
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if t.dial != nil {
		tr.DialContext = t.dial
	}
	tr.TLSClientConfig = t.clientTLS()
	tr.ForceAttemptHTTP2 = false
	c.Transport = tr
	if t.key != nil {
		c.Transport = keyed{next: tr, key: t.key}
	}
	return c
}

// keyed adds the cluster key's header to every request.
type keyed struct {
	next http.RoundTripper
	key  *security.ClusterKey
}

func (k keyed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	k.key.SetHeader(r)
	return k.next.RoundTrip(r)
}

// newHTTPServer is the API's server with its limits.
func newHTTPServer(h http.Handler, logger *slog.Logger, l httpLimits) *http.Server {
	return &http.Server{
		Handler:           streamingExempt(h),
		ReadHeaderTimeout: l.readHeader,
		ReadTimeout:       l.read,
		WriteTimeout:      l.write,
		IdleTimeout:       l.idle,
		MaxHeaderBytes:    l.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn), // refused handshakes, accept errors
	}
}

// streamingRequest reports whether r opens a stream that lasts as long as the client
// wants (a subscription).
func streamingRequest(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/streams/") && strings.HasSuffix(r.URL.Path, "/subscribe")
}

// streamingExempt lifts the server's read and write deadlines for streaming requests: the
// write deadline would cut the stream, and the read deadline would cancel its context.
func streamingExempt(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if streamingRequest(r) {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		h.ServeHTTP(w, r)
	})
}
