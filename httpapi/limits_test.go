package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/raftnode"
)

// TestHugeExpressionIs400: a 200,000-term expression in a store query or an app is refused
// with the limit, and the node still answers.
func TestHugeExpressionIs400(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	query := func(terms int) string {
		return `{"appName":"TradeApp","query":"from TradeAggregation within 0L, 1L per 'hours' select total` + strings.Repeat("+total", terms-1) + ` as x"}`
	}
	r := do(t, "POST", srv.URL+"/stores/query", query(100000))
	if r.code != 400 || !strings.Contains(r.body, `"type":"error"`) || !strings.Contains(r.body, "expression too large (more than 10000 operands and operators)") {
		t.Errorf("store query: %d %.300s", r.code, r.body)
	}
	r = do(t, "POST", srv.URL+"/stores/query", query(2000000)) // 12 MB
	if r.code != 400 || !strings.Contains(r.body, "more than the limit of 1048576") {
		t.Errorf("12 MB store query: %d %.300s", r.code, r.body)
	}
	app := "@app:name('Big') define stream B (v long); from B select v" + strings.Repeat("+v", 200000) + " as x insert into O;"
	r = do(t, "POST", srv.URL+"/v1/apps", app)
	if r.code != 400 || !strings.Contains(r.body, "expression too large") {
		t.Errorf("deploy: %d %.300s", r.code, r.body)
	}
	if r := do(t, "POST", srv.URL+"/stores/query", totalQuery); r.code != 200 {
		t.Errorf("after: %d %s", r.code, r.body)
	}
}

// TestMinIndexBounded: an index far beyond the log is 400 at once; one just ahead waits
// MaxWait and answers 503 naming the index and where the replica is.
func TestMinIndexBounded(t *testing.T) {
	n, srv := newSingleNode(t, Config{Limits: Limits{MaxWait: 200 * time.Millisecond}})
	start := time.Now()
	r := do(t, "POST", srv.URL+"/stores/query?min_index=18446744073709551615", totalQuery)
	if r.code != 400 || !strings.Contains(r.body, "min_index 18446744073709551615 for group 0") || !strings.Contains(r.body, "far beyond") {
		t.Errorf("absurd index: %d %s", r.code, r.body)
	}
	if time.Since(start) > 150*time.Millisecond {
		t.Errorf("the absurd index took %s", time.Since(start))
	}
	ahead := n.FSM().AppliedIndex() + 1000
	for _, u := range []string{
		"/stores/query?consistency=stale&min_index=" + itoa(ahead),
		"/v1/aggregations/TradeAggregation?within=0,1&per=hours&consistency=stale&min_index=" + itoa(ahead),
	} {
		method, body := "POST", totalQuery
		if strings.HasPrefix(u, "/v1/") {
			method, body = "GET", ""
		}
		start = time.Now()
		r = do(t, method, srv.URL+u, body)
		took := time.Since(start)
		want := fmt.Sprintf("waited 200ms (--max-wait) for min_index: index %d of group 0 (this replica has applied %d)", ahead, n.FSM().AppliedIndex())
		if r.code != 503 || !strings.Contains(r.body, want) || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s, want 503 with %s", u, r.code, r.body, want)
		}
		if took < 200*time.Millisecond || took > 5*time.Second {
			t.Errorf("%s took %s, want about 200ms", u, took)
		}
	}
}

func TestAppNameRule(t *testing.T) {
	n, srv := newSingleNode(t, Config{})
	before := n.FSM().AppliedIndex()
	for _, name := range []string{"x/y", "a\\u0000b", "-x", ".x", strings.Repeat("a", 129), "a b", "a\xffb"} {
		app := fmt.Sprintf("@app:name('%s') define stream S%d (a int);", name, len(name))
		r := do(t, "POST", srv.URL+"/v1/apps", app)
		if r.code != 400 || !strings.Contains(r.body, "an app name is letters, digits") {
			t.Errorf("app name %q: %d %s", name, r.code, r.body)
		}
	}
	if got := n.FSM().AppliedIndex(); got != before {
		t.Errorf("refused names moved the applied index %d → %d", before, got)
	}
	for _, name := range []string{"A1", "my_app-2.0", "Größe", strings.Repeat("a", 128)} {
		app := fmt.Sprintf("@app:name('%s') define stream S%d (a int);", name, len(name))
		if r := do(t, "POST", srv.URL+"/v1/apps", app); r.code != 201 {
			t.Errorf("app name %q: %d %s", name, r.code, r.body)
		}
	}
}

// TestBadEventsAre400: event times outside years 0001–9999 and duplicate keys, each named.
func TestBadEventsAre400(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	url := srv.URL + "/v1/streams/TradeStream/events"
	for _, c := range []struct{ body, want string }{
		{`[` + goodEvent + `,{"symbol":"x","price":1.0,"quantity":1,"timestamp":-9223372036854775808}]`,
			`event 1 of stream TradeStream: attribute timestamp (the event time of aggregation TradeAggregation) is -9223372036854775808 ms, outside years 0001 to 9999`},
		{`{"symbol":"x","price":1.0,"quantity":1,"timestamp":253402300800000}`, `event 0 of stream TradeStream: attribute timestamp`},
		{`{"symbol":"x","price":1.0,"quantity":1,"symbol":"y","timestamp":1}`, `"error":"event 0: attribute \"symbol\": duplicate key in the event object"`},
		{`[` + goodEvent + `,{"symbol":"x","price":1.0,"quantity":1,"timestamp":1,"timestamp":2}]`, `event 1: attribute \"timestamp\": duplicate key`},
		{`{"symbol":"x","price":1.0,"quantity":1,"timestamp":1}` + "\n" + `{"symbol":"x","price":1.0,"price":1.0,"quantity":1,"timestamp":1}`, `event 1: attribute \"price\": duplicate key`},
	} {
		r := do(t, "POST", url, c.body)
		if r.code != 400 || !strings.Contains(r.body, c.want) {
			t.Errorf("%s: %d %s, want 400 with %s", c.body, r.code, r.body, c.want)
		}
	}
	if r := do(t, "POST", srv.URL+"/stores/query", totalQuery); r.body != `{"records":[]}`+"\n" {
		t.Errorf("after refused events: %d %s, want no records", r.code, r.body)
	}
	// The bounds themselves are fine.
	for _, ts := range []string{"-62135596800000", "253402300799999"} {
		if r := do(t, "POST", url, `{"symbol":"x","price":1.0,"quantity":1,"timestamp":`+ts+`}`); r.code != 200 {
			t.Errorf("timestamp %s: %d %s", ts, r.code, r.body)
		}
	}
}

// TestCapacityLimits: keys per aggregation answer 503 naming the aggregation; a full table
// of live producers answers 429 to a new producer, and a known one still gets through.
func TestCapacityLimits(t *testing.T) {
	_, srv := newSingleNode(t, Config{}, func(c *raftnode.Config) { c.MaxKeys, c.MaxProducers = 2, 2 })
	url := srv.URL + "/v1/streams/TradeStream/events"
	ev := func(sym string) string {
		return `{"symbol":"` + sym + `","price":1.0,"quantity":1,"timestamp":1514783400000}`
	}
	if r := do(t, "POST", url, ev("a")+ev("b"), "Producer-Id", "p1", "Producer-Seq", "1"); r.code != 200 {
		t.Fatalf("two keys: %d %s", r.code, r.body)
	}
	r := do(t, "POST", url, ev("a")+ev("c"), "Producer-Id", "p1", "Producer-Seq", "2")
	if r.code != 503 || !strings.Contains(r.body, "TradeAggregation holds 2 group keys, the limit (--max-keys)") || r.header.Get("Retry-After") == "" {
		t.Errorf("third key: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", url, ev("b"), "Producer-Id", "p2", "Producer-Seq", "1"); r.code != 200 {
		t.Fatalf("second producer: %d %s", r.code, r.body)
	}
	r = do(t, "POST", url, ev("a"), "Producer-Id", "p3", "Producer-Seq", "1")
	if r.code != http.StatusTooManyRequests || !strings.Contains(r.body, `producer \"p3\" is new`) {
		t.Errorf("third producer: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", url, ev("a"), "Producer-Id", "p1", "Producer-Seq", "1"); r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Errorf("p1's retry: %d %s", r.code, r.body)
	}
}

type permanentErr struct{}

func (permanentErr) Error() string   { return "identifier too long for the store" }
func (permanentErr) Permanent() bool { return true }

// TestPermanentErrorsAre400: an error that says it is permanent is 400 even wrapped in a
// sentinel that is otherwise 503.
func TestPermanentErrorsAre400(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: %w", raftnode.ErrStoreTables, permanentErr{}),
		fmt.Errorf("%w: %w", raftnode.ErrStoreRead, permanentErr{}),
	} {
		if code, msg := errorStatus(err); code != 400 || !strings.Contains(msg, "identifier too long") {
			t.Errorf("%v: %d %s", err, code, msg)
		}
	}
	if code, _ := errorStatus(fmt.Errorf("%w: %w", raftnode.ErrStoreTables, errors.New("connection refused"))); code != 503 {
		t.Errorf("a transient store error: %d, want 503", code)
	}
}

// TestDeployAppLimits: the API refuses an app past the queries-per-app bound (a replayed
// log or snapshot would still take it: the bound is a gate, not part of parsing).
func TestDeployAppLimits(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	var b strings.Builder
	b.WriteString("@app:name('Many') define stream M (v long);\n")
	for range 1001 {
		b.WriteString("from M select v insert into MO;\n")
	}
	if r := do(t, http.MethodPost, srv.URL+"/v1/apps", b.String()); r.code != 400 || !strings.Contains(r.body, "siddhiql: 1002:1: too many queries: an app holds at most 1000") {
		t.Errorf("1001 queries: %d %s", r.code, r.body)
	}
}
