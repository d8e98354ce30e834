package httpapi

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tally-db/tally/raftnode"
)

const echoApp = `@app:name('Echo')
define stream E (k string, v long);
from E select k, v insert into EchoOut;
`

// smallBufListener makes every accepted connection's send buffer small, so that a client
// that does not read blocks the server's writes after a few kilobytes.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// subscriptionServer serves n's API with limits on a listener with small send buffers.
func subscriptionServer(t *testing.T, n *raftnode.Node, lim Limits) (*Server, string) {
	t.Helper()
	api := New(Config{NodeID: "n1", Limits: lim, Logger: slog.New(slog.DiscardHandler)}, []Group{n}, nil, raftnode.NewResolver())
	srv := httptest.NewUnstartedServer(api)
	srv.Listener = smallBufListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(api.CloseSubscriptions)
	return api, srv.URL
}

func waitSubs(t *testing.T, api *Server, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for api.openSubscriptions() != want {
		if time.Now().After(deadline) {
			t.Fatalf("open subscriptions: %d, want %d", api.openSubscriptions(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSubscribersCapped: past MaxSubscribers a subscription answers 503; a closed one
// frees its place.
func TestSubscribersCapped(t *testing.T) {
	n, srv := newSingleNode(t, Config{})
	deployApp(t, srv.URL, echoApp)
	api, url := subscriptionServer(t, n, Limits{MaxSubscribers: 2})
	sub := url + "/v1/streams/EchoOut/subscribe"
	a := subscribe(t, sub)
	subscribe(t, sub)
	r := do(t, http.MethodGet, sub, "")
	if r.code != 503 || !strings.Contains(r.body, "limit of 2 subscriptions (--max-subscribers)") || r.header.Get("Retry-After") == "" {
		t.Fatalf("third subscription: %d %s", r.code, r.body)
	}
	a.close()
	waitSubs(t, api, 1)
	subscribe(t, sub)
	waitSubs(t, api, 2)
}

// TestSubscriberThatStopsReadingIsDropped: a client that never reads is dropped once a
// write has blocked for SubscriberWriteTimeout, and ingest goes on meanwhile.
func TestSubscriberThatStopsReadingIsDropped(t *testing.T) {
	n, srv := newSingleNode(t, Config{})
	deployApp(t, srv.URL, echoApp)
	api, url := subscriptionServer(t, n, Limits{SubscriberWriteTimeout: 300 * time.Millisecond})
	// A raw client with a small receive buffer that sends the request and never reads.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /v1/streams/EchoOut/subscribe?from=earliest HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitSubs(t, api, 1)
	// About 2 MB of outputs: far more than the two small socket buffers hold.
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, `{"k":"%s-%d","v":%d}`+"\n", strings.Repeat("x", 100), i, i)
	}
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; api.openSubscriptions() != 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled subscriber is still served after %d batches", i)
		}
		if i < 8 {
			if r := do(t, http.MethodPost, srv.URL+"/v1/streams/E/events", b.String()); r.code != 200 {
				t.Fatalf("ingest while a subscriber stalls: %d %s", r.code, r.body)
			}
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A reading subscriber still works.
	s := subscribe(t, url+"/v1/streams/EchoOut/subscribe")
	if r := do(t, http.MethodPost, srv.URL+"/v1/streams/E/events", `{"k":"last","v":1}`); r.code != 200 {
		t.Fatal(r.body)
	}
	if ev := s.next(t); !strings.Contains(ev.data, `"k":"last"`) {
		t.Errorf("next event: %+v", ev)
	}
}
