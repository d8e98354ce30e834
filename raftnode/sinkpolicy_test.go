package raftnode

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/fsm"
)

func TestSinkPolicy_Rules(t *testing.T) {
	if _, err := ParseSinkPolicy([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), `"10.0.0.0/33"`) {
		t.Errorf("bad CIDR: %v", err)
	}
	if _, err := ParseSinkPolicy([]string{"http://x/"}); err == nil {
		t.Error("a URL as a rule was accepted")
	}
	p, err := ParseSinkPolicy([]string{"Hooks.Example", "10.0.0.0/8", "fd00::1"})
	if err != nil {
		t.Fatal(err)
	}
	var none *SinkPolicy
	for _, tc := range []struct {
		p    *SinkPolicy
		url  string
		want string // "" means allowed
	}{
		{none, "http://anything.example/x", ""},
		{none, "http://127.0.0.1:9/x", ""},
		{none, "http://169.254.169.254/latest/meta-data/", "link-local address 169.254.169.254"},
		{none, "http://[fe80::1%25eth0]/x", "link-local address fe80::1"},
		{none, "http://[::ffff:169.254.1.1]/x", "link-local address 169.254.1.1"},
		{p, "https://hooks.example/in", ""},
		{p, "http://10.1.2.3:8080/in", ""},
		{p, "http://[fd00::1]/in", ""},
		{p, "http://169.254.10.10/in", "never allowed"},
		{p, "http://evil.example/in", "host evil.example is not allowed by --sink-allow Hooks.Example,10.0.0.0/8,fd00::1"},
		{p, "http://u:pw@127.0.0.1/in", "sink URL http://u:***@127.0.0.1/in: host 127.0.0.1 is not allowed"},
	} {
		err := tc.p.CheckURL(tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.want != "" && (!errors.Is(err, ErrAppRefused) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want ErrAppRefused with %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
	// At dial time the resolved address is what counts: a name that now resolves to a
	// link-local or disallowed address is refused, before any packet is sent.
	for _, tc := range []struct {
		p          *SinkPolicy
		host, addr string
		want       string
	}{
		{none, "metadata.google.internal", "169.254.169.254:80", "link-local"},
		{none, "x", "[fe80::1]:80", "link-local"},
		{none, "x", "127.0.0.1:80", ""},
		{p, "hooks.example", "127.0.0.1:80", ""}, // allowed by name
		{p, "rebound.example", "127.0.0.1:80", "does not allow"},
		{p, "rebound.example", "10.9.9.9:80", ""},
	} {
		err := tc.p.checkDial(tc.host, tc.addr)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("dial %s at %s: err = %v, want %q", tc.host, tc.addr, err, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := none.dialContext("metadata.google.internal")(ctx, "tcp", "169.254.169.254:80"); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("dialing 169.254.169.254: %v", err)
	}
}

// TestNode_DeployRefusesSinkTargets: with --sink-allow, a deploy whose sink targets another
// host is refused before it reaches the log, naming the URL and the rules; a link-local
// target is refused without rules too.
func TestNode_DeployRefusesSinkTargets(t *testing.T) {
	policy, err := ParseSinkPolicy([]string{"hooks.example"})
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 1, func(cfg *Config) { cfg.SinkPolicy = policy })
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	before := leader.FSM().AppliedIndex()
	for url, want := range map[string]string{
		"http://user:pw@127.0.0.1:9/alerts":   "sink URL http://user:***@127.0.0.1:9/alerts: host 127.0.0.1 is not allowed by --sink-allow hooks.example",
		"http://169.254.169.254/latest/x":     "link-local",
		"http://metadata.google.internal/x/y": "host metadata.google.internal is not allowed",
	} {
		_, _, err := leader.Deploy(ctx, alertApp(url))
		if !errors.Is(err, ErrAppRefused) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "3:1") {
			t.Errorf("%s: err = %v, want ErrAppRefused with %q at 3:1", url, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if got := leader.FSM().AppliedIndex(); got != before {
		t.Errorf("refused deploys reached the log: applied %d → %d", before, got)
	}
	if _, _, err := leader.Deploy(ctx, alertApp("https://hooks.example/in")); err != nil {
		t.Errorf("allowed host: %v", err)
	}
}

// lockedBuffer is a log destination tests read while the node writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDeliver_NoRedirects: a sink whose receiver answers with a redirect does not follow
// it (the body and the Authorization header would go elsewhere): the delivery fails and
// is retried, and the warning and the sink status hide the URL's password.
func TestDeliver_NoRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(target.Close)
	var posts atomic.Int64
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Redirect(w, r, target.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	logs := &lockedBuffer{}
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	url := strings.Replace(redirect.URL, "http://", "http://bob:hunter2@", 1) + "/alerts"
	deployAlerts(t, c, url)
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	var rows []fsm.Part
	for i := range 101 {
		rows = append(rows, part("p", uint64(i+1), row("a", 1)))
	}
	if _, err := leader.Ingest(ctx, rows); err != nil {
		t.Fatal(err)
	}
	eventually(t, testTimeout, func() bool { return posts.Load() >= 2 }, "the redirecting receiver is retried")
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
	st := leader.SinkStatus()
	var http0 SinkStatus
	for _, s := range st {
		if s.Type == "http" {
			http0 = s
		}
	}
	if !http0.Failing || !strings.Contains(http0.LastError, "307") || !strings.Contains(http0.LastError, "never follow redirects") {
		t.Errorf("status: %+v", http0)
	}
	eventually(t, testTimeout, func() bool { return strings.Contains(logs.String(), "sink delivery failed") }, "the failure is logged")
	for what, text := range map[string]string{"status": http0.LastError, "log": logs.String()} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("the %s shows the password: %s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "bob:***@") {
		t.Errorf("the log does not name the sink's URL with its password hidden:\n%s", logs.String())
	}
}
