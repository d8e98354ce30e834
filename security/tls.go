package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of a node's TLS identity.
type Files struct {
	// Cert and Key are this node's certificate (chain) and private key; both required.
	Cert, Key string
	// CA is the cluster CA's certificate(s); empty means no mutual TLS.
	CA string
}

// checkEvery is how often, at most, the files are looked at for changes.
const checkEvery = time.Second

// TLS is a node's certificate and the cluster CA, re-read when their files change: a
// connection made after a rotated file is in place (checked at most once per checkEvery)
// uses the new one, with no restart. A change that does not load (a key that no longer
// matches its certificate halfway through a rotation, say) keeps the previous pair and is
// retried at the next check. It is safe for concurrent use.
type TLS struct {
	files  Files
	logger *slog.Logger
	every  time.Duration
	now    func() time.Time

	mu      sync.Mutex
	checked time.Time
	stamps  [3]stamp // cert, key, CA
	cur     *loaded
}

// loaded is one reading of the files and the server configurations built from it. It is
// never changed once built.
type loaded struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil without a CA
	api  *tls.Config
	raft *tls.Config
}

// stamp tells whether a file changed: its modification time and size.
type stamp struct {
	mod  time.Time
	size int64
}

// Load reads the files. A missing or unreadable file, a key that does not match the
// certificate, or a CA file without a certificate is an error naming the file.
func Load(f Files, logger *slog.Logger) (*TLS, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("security: TLS needs both a certificate and a key (--tls-cert and --tls-key)")
	}
	if logger == nil {
		logger = slog.Default()
	}
	t := &TLS{files: f, logger: logger.With("component", "tls"), every: checkEvery, now: time.Now}
	stamps, err := t.stat()
	if err != nil {
		return nil, err
	}
	cur, err := t.load()
	if err != nil {
		return nil, err
	}
	t.cur, t.stamps, t.checked = cur, stamps, t.now()
	return t, nil
}

// HasCA reports whether a cluster CA was given (mutual TLS between nodes).
func (t *TLS) HasCA() bool { return t.files.CA != "" }

func (t *TLS) stat() ([3]stamp, error) {
	var s [3]stamp
	for i, p := range []string{t.files.Cert, t.files.Key, t.files.CA} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return s, fmt.Errorf("security: %w", err)
		}
		s[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

func (t *TLS) load() (*loaded, error) {
	certPEM, err := os.ReadFile(t.files.Cert)
	if err != nil {
		return nil, fmt.Errorf("security: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(t.files.Key)
	if err != nil {
		return nil, fmt.Errorf("security: read key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("security: load certificate %s with key %s: %w", t.files.Cert, t.files.Key, err)
	}
	l := &loaded{cert: &cert}
	if t.files.CA != "" {
		caPEM, err := os.ReadFile(t.files.CA)
		if err != nil {
			return nil, fmt.Errorf("security: read CA: %w", err)
		}
		l.pool = x509.NewCertPool()
		if !l.pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("security: CA file %s holds no PEM certificate", t.files.CA)
		}
	}
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return l.cert, nil }
	l.api = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert, NextProtos: []string{"http/1.1"}}
	if l.pool != nil {
		// User clients need no certificate; one that is given must be the cluster CA's
		// (it makes the caller a node).
		l.api.ClientAuth, l.api.ClientCAs = tls.VerifyClientCertIfGiven, l.pool
		l.raft = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert,
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: l.pool}
	}
	return l, nil
}

// current returns the loaded files, reloading them first if they changed (looked at no
// more than once per t.every).
func (t *TLS) current() *loaded {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if now.Sub(t.checked) < t.every {
		return t.cur
	}
	t.checked = now
	stamps, err := t.stat()
	if err != nil {
		t.logger.Warn("cannot look at the TLS files; keeping the loaded certificates", "err", err)
		return t.cur
	}
	if stamps == t.stamps {
		return t.cur
	}
	cur, err := t.load()
	if err != nil {
		// Not recorded as seen: the next check tries again (the other half of a rotation
		// may not be written yet).
		t.logger.Warn("changed TLS files do not load; keeping the loaded certificates", "err", err)
		return t.cur
	}
	t.cur, t.stamps = cur, stamps
	t.logger.Info("reloaded TLS files", "cert", t.files.Cert, "ca", t.files.CA, "not_after", leafNotAfter(cur.cert))
	return t.cur
}

func leafNotAfter(c *tls.Certificate) time.Time {
	if c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	return time.Time{}
}

// ServerConfig is the configuration of the HTTPS API: it serves this node's certificate
// and, with a CA, verifies a client certificate when one is given (user clients need
// none; nodes present theirs, see IsNode). TLS 1.2 at least.
func (t *TLS) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetCertificate:     func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.current().cert, nil },
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return t.current().api, nil },
	}
}

// RaftServerConfig is the configuration of the Raft port: only a peer presenting a
// certificate signed by the cluster CA completes the handshake. nil without a CA.
func (t *TLS) RaftServerConfig() *tls.Config {
	if !t.HasCA() {
		return nil
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetCertificate:     func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.current().cert, nil },
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return t.current().raft, nil },
	}
}

// ClientConfig is the configuration of connections to other nodes (Raft dials, meta
// lookups, forwarded and fan-out HTTP requests, joins). It presents this node's
// certificate. With a CA, the peer must present a certificate the current CA signed, for
// server use; any such certificate is a node of the cluster, whatever address it was
// reached at, so the CA must sign node certificates only. Without a CA the peer is
// verified the usual way, against the system's roots and by host name.
func (t *TLS) ClientConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return t.current().cert, nil },
	}
	if !t.HasCA() {
		return c
	}
	// The CA may be rotated, so the chain is checked here against the current one
	// (RootCAs is fixed once the config is in use).
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyPeer(cs, t.current().pool, x509.ExtKeyUsageServerAuth)
	}
	return c
}

// verifyPeer checks that the peer's certificate chains to pool and allows usage.
func verifyPeer(cs tls.ConnectionState, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("security: the peer presented no certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("security: the peer's certificate is not the cluster CA's: %w", err)
	}
	return nil
}

// IsNode reports whether r came from a node of the cluster: over TLS, with a client
// certificate the cluster CA verified at the handshake (the API verifies only against
// that CA, so any verified chain is a node's).
func IsNode(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
}
