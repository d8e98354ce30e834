package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/internal/certtest"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/security"
)

// seen records, for each forwarded request a node received, whether it proved to come from
// a node.
type seen struct {
	mu   sync.Mutex
	node []bool
}

func (s *seen) add(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.node = append(s.node, v)
}

func (s *seen) get() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.node...)
}

// startSecureNode is startTCPNode with mutual TLS on both ports and a cluster key header on
// node-to-node requests; NodeIdentity's verdict on forwarded requests goes to rec.
func startSecureNode(t *testing.T, id string, bootstrap bool, certs *certtest.Certs, key *security.ClusterKey, rec *seen) *tcpNode {
	t.Helper()
	tl, err := security.Load(security.Files{Cert: certs.Pairs[id].Cert, Key: certs.Pairs[id].Key, CA: certs.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, id, bootstrap, nodeSetup{
		muxOpts: []raftnode.MuxOption{raftnode.WithTLS(tl.RaftServerConfig(), tl.ClientConfig()), raftnode.WithClusterKey(key)},
		api: []func(*Config){func(c *Config) {
			c.TLSClient, c.NodeCredentials = tl.ClientConfig(), key.SetHeader
			c.NodeIdentity = func(r *http.Request) bool { return security.IsNode(r) && key.Valid(r) }
		}},
		resolver: func(mux *raftnode.Mux) Resolver { return mux.Resolver() },
		serve: func(api http.Handler, cfg Config, ln net.Listener) (http.Handler, net.Listener) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get(forwardedHeader) != "" {
					rec.add(cfg.NodeIdentity(r))
				}
				api.ServeHTTP(w, r)
			})
			return h, tls.NewListener(ln, tl.ServerConfig())
		},
	})
}

// TestForwardOverMutualTLS: two nodes on TLS-only ports; a follower forwards ingest to the
// leader over HTTPS with its node certificate and the cluster key header, Raft replicates
// over mutual TLS, and a redirect names an https:// URL.
func TestForwardOverMutualTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "n1", "n2")
	key := security.NewClusterKey([]byte("0123456789abcdef0123456789abcdef"))
	var rec1, rec2 seen
	n1 := startSecureNode(t, "n1", true, certs, key, &rec1)
	waitFor(t, n1.node.IsLeader, "n1 leads")
	_, idx, err := n1.node.Deploy(ctx, tradeApp)
	if err != nil {
		t.Fatal(err)
	}
	n2 := startSecureNode(t, "n2", false, certs, key, &rec2)
	if err := n1.node.Join(ctx, "n2", n2.mux.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := n2.node.WaitApplied(ctx, idx); err != nil {
		t.Fatalf("replication over mutual TLS: %v", err)
	}
	waitFor(t, func() bool { id, _, err := n2.node.Leader(); return err == nil && id == "n1" }, "n2 knows n1 leads")

	caPEM, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	user := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := user.Post(url, "application/json", strings.NewReader(goodEvent))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// follower is the node that does not lead (an election while n2 joined may have moved
	// the leadership).
	follower := func() *tcpNode {
		t.Helper()
		var f *tcpNode
		waitFor(t, func() bool {
			l1, l2 := n1.node.IsLeader(), n2.node.IsLeader()
			f = map[bool]*tcpNode{true: n2, false: n1}[l1]
			return l1 != l2
		}, "one leader")
		return f
	}
	// A request that meets a leadership change answers 503: retry.
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, body := post("https://" + follower().httpAddr + "/v1/streams/TradeStream/events")
		if resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if resp.StatusCode != 200 || !strings.Contains(body, `"events":1`) {
			t.Fatalf("ingest forwarded over HTTPS: %d %s", resp.StatusCode, body)
		}
		break
	}
	if got := append(rec1.get(), rec2.get()...); len(got) == 0 || slices.Contains(got, false) {
		t.Errorf("forwarded requests the nodes saw, proven to come from a node: %v", got)
	}
	resp, body := post("https://" + follower().httpAddr + "/v1/streams/TradeStream/events?redirect=true")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, "https://") {
		t.Errorf("redirect: %d Location %q %s", resp.StatusCode, loc, body)
	}
	// A plain HTTP request to the HTTPS port gets no API answer.
	if resp, err := http.Get("http://" + n2.httpAddr + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "ok") {
			t.Errorf("plain HTTP to the HTTPS port: %d %s", resp.StatusCode, b)
		}
	}
}
