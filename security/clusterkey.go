package security

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// ClusterKeyHeader carries the cluster key's token on node-to-node HTTP requests.
const ClusterKeyHeader = "Tally-Cluster-Key"

// minKeyBytes is the shortest cluster key accepted.
const minKeyBytes = 16

// nonceBytes is the size of the Raft port's challenge.
const nonceBytes = 32

// ErrWrongClusterKey is returned by Challenge when the peer's answer is wrong or missing.
var ErrWrongClusterKey = errors.New("security: the peer does not know the cluster key")

// ClusterKey is a secret shared by the nodes of a cluster that runs without TLS: it proves
// a peer is a node, on the Raft port (challenge and response) and on HTTP requests
// (ClusterKeyHeader). Without TLS the traffic itself is neither encrypted nor protected
// from tampering; the key only keeps strangers from posing as nodes. It is safe for
// concurrent use.
type ClusterKey struct {
	key   []byte
	token string // the header's value: derived from the key, so the file's text never travels
}

// LoadClusterKey reads a cluster key file: surrounding white space is ignored (`openssl
// rand -hex 32 > FILE` makes one), at least 16 bytes must remain, and the file must not be
// readable by group or others.
func LoadClusterKey(path string) (*ClusterKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("security: cluster key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("security: cluster key file %s is readable by group or others (mode %04o): make it 0600 (chmod 600 %s)", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("security: cluster key: %w", err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) == 0 {
		return nil, fmt.Errorf("security: cluster key file %s is empty", path)
	}
	if len(key) < minKeyBytes {
		return nil, fmt.Errorf("security: cluster key in %s is %d bytes; use at least %d (openssl rand -hex 32)", path, len(key), minKeyBytes)
	}
	return NewClusterKey(key), nil
}

// NewClusterKey returns the ClusterKey of key (which it copies).
func NewClusterKey(key []byte) *ClusterKey {
	k := &ClusterKey{key: append([]byte(nil), key...)}
	k.token = hex.EncodeToString(k.mac([]byte("tally node-to-node HTTP v1")))
	return k
}

func (k *ClusterKey) mac(msg []byte) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write(msg)
	return h.Sum(nil)
}

// SetHeader marks r, a request to another node, as coming from a node.
func (k *ClusterKey) SetHeader(r *http.Request) { r.Header.Set(ClusterKeyHeader, k.token) }

// Valid reports whether r carries this cluster key's header (compared in constant time).
func (k *ClusterKey) Valid(r *http.Request) bool {
	v := r.Header.Get(ClusterKeyHeader)
	return v != "" && subtle.ConstantTimeCompare([]byte(v), []byte(k.token)) == 1
}

// Challenge is the accepting side of the Raft port's proof: it sends a random nonce and
// reads the answer, HMAC-SHA256(key, nonce). A wrong or missing answer is
// ErrWrongClusterKey (the caller drops the connection). The caller bounds it with a
// deadline on c.
func (k *ClusterKey) Challenge(c net.Conn) error {
	nonce := make([]byte, nonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("security: make a challenge: %w", err)
	}
	if _, err := c.Write(nonce); err != nil {
		return fmt.Errorf("security: send the challenge: %w", err)
	}
	answer := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, answer); err != nil {
		return fmt.Errorf("%w: no answer to the challenge: %w", ErrWrongClusterKey, err)
	}
	if !hmac.Equal(answer, k.mac(nonce)) {
		return ErrWrongClusterKey
	}
	return nil
}

// Respond is the dialing side: it reads the nonce and answers it. The caller bounds it
// with a deadline on c.
func (k *ClusterKey) Respond(c net.Conn) error {
	nonce := make([]byte, nonceBytes)
	if _, err := io.ReadFull(c, nonce); err != nil {
		return fmt.Errorf("security: read the cluster key challenge: %w", err)
	}
	if _, err := c.Write(k.mac(nonce)); err != nil {
		return fmt.Errorf("security: answer the cluster key challenge: %w", err)
	}
	return nil
}
