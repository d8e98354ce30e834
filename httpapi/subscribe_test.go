package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/raftnode"
)

// alertApp alerts once per event of a symbol past a running total of 100 (q = 1 each).
func alertApp(sinkURL string) string {
	return fmt.Sprintf(`@app:name('Al')
define stream S (symbol string, q long);
@sink(type='http', publisher.url='%s', retry.interval='10 millisec', retry.max.interval='50 millisec')
define stream Alerts (symbol string, t long);
from S#window.time(1 min) select symbol, sum(q) as t group by symbol having t > 100 insert into Alerts;
`, sinkURL)
}

func deployApp(t *testing.T, url, text string) {
	t.Helper()
	if r := do(t, http.MethodPost, url+"/v1/apps", text); r.code != http.StatusCreated && r.code != http.StatusOK {
		t.Fatalf("deploy: %d %s", r.code, r.body)
	}
}

func sendQ(t *testing.T, url, symbol string, n int) response {
	t.Helper()
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, `{"symbol":%q,"q":1}`+"\n", symbol)
	}
	return do(t, http.MethodPost, url+"/v1/streams/S/events", b.String())
}

type sseEvent struct{ id, event, data string }

// sse is one open subscription.
type sse struct {
	resp   *http.Response
	cancel context.CancelFunc
	lines  *bufio.Scanner
}

func subscribe(t *testing.T, url string, headers ...string) *sse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("subscribe %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{resp: resp, cancel: cancel, lines: bufio.NewScanner(resp.Body)}
	t.Cleanup(s.close)
	return s
}

func (s *sse) close() { s.cancel(); s.resp.Body.Close() }

// next reads the next event (comments skipped); it fails the test after the 10 s bound.
func (s *sse) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for s.lines.Scan() {
		line := s.lines.Text()
		switch {
		case line == "":
			if ev.data != "" {
				return ev
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	t.Fatalf("subscription ended: %v", s.lines.Err())
	return ev
}

func alertT(t *testing.T, ev sseEvent) int64 {
	t.Helper()
	var body struct {
		ID     string
		Stream string
		Data   struct {
			Symbol string
			T      int64
		}
	}
	if err := json.Unmarshal([]byte(ev.data), &body); err != nil || body.ID != ev.id || ev.event != "output" || body.Stream != "Alerts" {
		t.Fatalf("event %+v: %v", ev, err)
	}
	return body.Data.T
}

func TestSubscribe_ReplayAndResume(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(rcv.Close)
	_, srv := newSingleNode(t, Config{})
	deployApp(t, srv.URL, alertApp(rcv.URL))
	sub := srv.URL + "/v1/streams/Alerts/subscribe"

	live := subscribe(t, sub) // no from: new outputs only
	if r := sendQ(t, srv.URL, "a", 105); r.code != http.StatusOK {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	var ids []string
	for want := int64(101); want <= 105; want++ {
		ev := live.next(t)
		if got := alertT(t, ev); got != want {
			t.Fatalf("live: t=%d, want %d", got, want)
		}
		ids = append(ids, ev.id)
	}
	live.close()

	// Resume after the third with from=, then after the fourth with Last-Event-ID.
	s1 := subscribe(t, sub+"?from="+ids[2])
	for _, want := range ids[3:] {
		if ev := s1.next(t); ev.id != want {
			t.Fatalf("resumed: %s, want %s", ev.id, want)
		}
	}
	s1.close()
	s2 := subscribe(t, sub, "Last-Event-ID", ids[3])
	if ev := s2.next(t); ev.id != ids[4] {
		t.Fatalf("Last-Event-ID: %s, want %s", ev.id, ids[4])
	}
	sendQ(t, srv.URL, "a", 1)
	if got := alertT(t, s2.next(t)); got != 106 {
		t.Fatalf("followed: t=%d, want 106", got)
	}
	s3 := subscribe(t, sub+"?from=earliest")
	if ev := s3.next(t); ev.id != ids[0] {
		t.Fatalf("earliest: %s, want %s", ev.id, ids[0])
	}

	for _, c := range []struct {
		url  string
		code int
		msg  string
	}{
		{srv.URL + "/v1/streams/S/subscribe", http.StatusNotFound, "unknown output stream"},
		{sub + "?from=x", http.StatusBadRequest, "not GROUP-INDEX-SEQ"},
		{sub + "?from=3-1-1", http.StatusBadRequest, "group 3"},
		{sub + "?group=7", http.StatusBadRequest, "groups 0 to 0"},
	} {
		if r := do(t, http.MethodGet, c.url, ""); r.code != c.code || !strings.Contains(r.body, c.msg) {
			t.Errorf("%s: %d %s, want %d %q", c.url, r.code, r.body, c.code, c.msg)
		}
	}
}

func TestSubscribe_GoneAndBackpressure(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	t.Cleanup(rcv.Close)
	n, srv := newSingleNode(t, Config{}, func(c *raftnode.Config) { c.RetainOutputs = 2; c.MaxUndelivered = 5 })
	deployApp(t, srv.URL, alertApp(rcv.URL+"/hook"))
	if r := sendQ(t, srv.URL, "a", 105); r.code != http.StatusOK {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	r := sendQ(t, srv.URL, "a", 1)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
		!strings.Contains(r.body, "sink 0 (http "+rcv.URL+"/hook) of stream Alerts has 5 undelivered outputs") {
		t.Fatalf("over the bound: %d %v %s", r.code, r.header, r.body)
	}
	// Undelivered outputs stay, whatever the retention: from=earliest still has all 5.
	s := subscribe(t, srv.URL+"/v1/streams/Alerts/subscribe?from=earliest")
	first := s.next(t)
	if alertT(t, first) != 101 {
		t.Fatal(first)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.SinkStatus()[0].Failing {
		if time.Now().After(deadline) {
			t.Fatalf("the sink never failed: %+v", n.SinkStatus())
		}
		time.Sleep(10 * time.Millisecond) // polling the delivery worker's progress
	}
	r = do(t, http.MethodGet, srv.URL+"/v1/sinks", "")
	if r.code != http.StatusOK || !strings.Contains(r.body, `"undelivered":5`) || !strings.Contains(r.body, `"failing":true`) {
		t.Fatalf("sinks: %d %s", r.code, r.body)
	}
	s.close()
	// Undeploying drops the outbox and its backlog.
	if r := do(t, http.MethodDelete, srv.URL+"/v1/apps/Al", ""); r.code != http.StatusOK {
		t.Fatalf("undeploy: %d %s", r.code, r.body)
	}
	if r := do(t, http.MethodGet, srv.URL+"/v1/streams/Alerts/subscribe", ""); r.code != http.StatusNotFound {
		t.Fatalf("after undeploy: %d %s", r.code, r.body)
	}
	// A log sink delivers at once; then only the newest 2 outputs are retained.
	logApp := strings.Replace(alertApp(""), "@sink(type='http', publisher.url='', retry.interval='10 millisec', retry.max.interval='50 millisec')", "@sink(type='log')", 1)
	deployApp(t, srv.URL, logApp)
	live := subscribe(t, srv.URL+"/v1/streams/Alerts/subscribe")
	if r := sendQ(t, srv.URL, "b", 105); r.code != http.StatusOK {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	firstID := live.next(t).id
	deadline = time.Now().Add(10 * time.Second)
	for n.SinkStatus()[0].Undelivered != 0 || !strings.Contains(do(t, http.MethodGet, srv.URL+"/v1/streams/Alerts/subscribe?from="+firstID, "").body, "no longer retained") {
		if time.Now().After(deadline) {
			t.Fatalf("log sink never delivered: %+v", n.SinkStatus())
		}
		time.Sleep(10 * time.Millisecond) // polling the sink's replicated progress
	}
	r = do(t, http.MethodGet, srv.URL+"/v1/streams/Alerts/subscribe?from="+firstID, "")
	if r.code != http.StatusGone || !strings.Contains(r.body, "resubscribe with from=earliest") {
		t.Fatalf("gone: %d %s", r.code, r.body)
	}
}
