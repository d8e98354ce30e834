package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tally-db/tally/client"
	"github.com/tally-db/tally/internal/certtest"
)

// secure is what a run with Config.Secure adds: every node serves HTTPS with a certificate
// of the run's CA, speaks mutual TLS to the others (Raft port, forwarding, joins) and asks
// for credentials; the harness talks to the nodes as one user with every permission.
type secure struct {
	certs *certtest.Certs
	users string // the users file
	pool  *x509.CertPool
}

const (
	secureUser     = "jepsen"
	securePassword = "jepsen-password"
)

// newSecure makes the run's CA, one certificate per node and the users file in dir.
func newSecure(dir string, ids []string) (*secure, error) {
	certs, err := certtest.Make(filepath.Join(dir, "certs"), ids...)
	if err != nil {
		return nil, err
	}
	users := filepath.Join(dir, "users.json")
	text := fmt.Sprintf(`[{"username":%q,"password":%q,"perms":["all"]}]`, secureUser, securePassword)
	if err := os.WriteFile(users, []byte(text), 0o600); err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("harness: %s holds no certificate", certs.CA)
	}
	return &secure{certs: certs, users: users, pool: pool}, nil
}

// args are node id's security flags.
func (s *secure) args(id string) []string {
	p := s.certs.Pairs[id]
	return []string{"--tls-cert", p.Cert, "--tls-key", p.Key, "--tls-ca", s.certs.CA, "--auth", s.users}
}

// clientOptions are how the harness reaches the nodes, each request bounded by timeout:
// plain HTTP without s, else HTTPS verified with the run's CA and the harness user's
// credentials.
func (s *secure) clientOptions(timeout time.Duration) client.Options {
	opts := client.Options{Timeout: timeout}
	if s != nil {
		opts.TLS = &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
		opts.User, opts.Password = secureUser, securePassword
	}
	return opts
}

// scheme is the nodes' URL scheme.
func (s *secure) scheme() string {
	if s == nil {
		return "http"
	}
	return "https"
}
