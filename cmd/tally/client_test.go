package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// fakeAPI is an httptest server standing in for a node: it records every request and
// answers with the handler of its method and path.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                string
}

func newFakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)})
		f.mu.Unlock()
		h, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"no such endpoint: %s %s"}`, r.Method, r.URL.Path)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// answer returns a handler that writes code and body as JSON.
func answer(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body+"\n")
	}
}

func tallyIn(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const statusJSON = `{"id":"n2","groups":[{"id":0,"shard_id":"n1","role":"follower","leader":{"id":"n1","http_addr":"127.0.0.1:7070"},"term":3,"commit_index":42,"applied_index":41,"last_index":42,"lag":1,"members":[{"id":"n1","raft_addr":"127.0.0.1:7071","voter":true},{"id":"n2","raft_addr":"127.0.0.1:7081","voter":true},{"id":"n3","raft_addr":"127.0.0.1:7091","voter":false}]}]}`

func TestStatus(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/cluster/status": answer(200, statusJSON)})
	code, out, errOut := tally(t, "status", "--addr", api.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `node n2
GROUP  SHARD  ROLE      LEADER  LEADER HTTP     TERM  COMMIT  APPLIED  LAG  MEMBERS
0      n1     follower  n1      127.0.0.1:7070  3     42      41       1    n1,n2,n3 (nonvoter)
`
	if out != want {
		t.Errorf("status printed\n%s\nwant\n%s", out, want)
	}
	// A node without a cluster map (404) shows its status alone.
	reqs := api.recorded()
	if len(reqs) != 2 || reqs[0].Method != "GET" || reqs[0].Path != "/v1/cluster/status" || reqs[1].Path != "/v1/cluster/map" {
		t.Errorf("requests: %+v", reqs)
	}

	// --json prints the answer as it is; the address may lack the scheme.
	code, out, _ = tally(t, "status", "--json", "--addr", strings.TrimPrefix(api.URL, "http://"))
	if code != 0 || out != statusJSON+"\n" {
		t.Errorf("status --json: exit %d, printed %q", code, out)
	}

	// No leader known: dashes.
	api2 := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/cluster/status": answer(200,
		`{"id":"n9","groups":[{"id":0,"shard_id":"n9","role":"candidate","leader":null,"term":7,"commit_index":0,"applied_index":0,"last_index":0,"members":[]}]}`)})
	_, out, _ = tally(t, "status", "--addr", api2.URL)
	if !strings.Contains(out, "0      n9     candidate  -       -            7     0       0        0    -") {
		t.Errorf("status without a leader printed\n%s", out)
	}
}

func TestAddrFromEnv(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/cluster/status": answer(200, statusJSON)})
	t.Setenv("TALLY_ADDR", api.URL)
	if code, _, errOut := tally(t, "status"); code != 0 {
		t.Fatalf("status with TALLY_ADDR: exit %d: %s", code, errOut)
	}
	if n := len(api.recorded()); n != 2 { // status, then the cluster map
		t.Errorf("TALLY_ADDR server got %d requests, want 2", n)
	}
}

func TestServerErrorsAreShownVerbatim(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/cluster/status": answer(503, `{"error":"not ready: no leader known or still applying the log"}`),
		"GET /v1/apps":           answer(500, `plain text failure`),
	})
	code, out, errOut := tally(t, "status", "--addr", api.URL)
	if code != 1 || out != "" || errOut != "tally status: not ready: no leader known or still applying the log (HTTP 503 Service Unavailable)\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = tally(t, "apps", "list", "--addr", api.URL)
	if code != 1 || errOut != "tally apps list: plain text failure (HTTP 500 Internal Server Error)\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestUnreachable(t *testing.T) {
	api := newFakeAPI(t, nil)
	addr := api.URL
	api.Close()
	code, _, errOut := tally(t, "status", "--addr", addr)
	if code != 1 || !strings.Contains(errOut, "GET "+addr+"/v1/cluster/status: ") || !strings.Contains(errOut, "Set --addr or TALLY_ADDR") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := tally(t, "status", "--addr", "ftp://x"); code != 1 || !strings.Contains(errOut, "not an HTTP address") {
		t.Errorf("bad --addr: exit %d, stderr %q", code, errOut)
	}
}

const oneApp = `{"apps":[{"name":"TradeApp","streams":["TradeStream"],"aggregations":["TradeAggregation"],"queries":1}]}`

const hoursQuery = `from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice`

func TestQuery(t *testing.T) {
	records := `{"records":[[1514782800000,"wso2",70,100.0],[1514786400000,"ibm",5,null]]}`
	withDetails := `{"records":[[1514782800000,"wso2",70,100.0],[1514786400000,"ibm",5,null]],"details":[{"name":"AGG_TIMESTAMP","dataType":"LONG"},{"name":"symbol","dataType":"STRING"},{"name":"total","dataType":"LONG"},{"name":"avgPrice","dataType":"DOUBLE"}]}`
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/apps": answer(200, oneApp),
		"POST /stores/query": func(w http.ResponseWriter, r *http.Request) {
			var req storeQueryBody
			_ = json.NewDecoder(r.Body).Decode(&req)
			if req.Details {
				answer(200, withDetails)(w, r)
			} else {
				answer(200, records)(w, r)
			}
		},
	})

	// The app is found with GET /v1/apps; the flags may follow the query.
	code, out, errOut := tally(t, "query", hoursQuery, "--addr", api.URL, "--consistency", "stale")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != records+"\n" {
		t.Errorf("query printed %q, want %q", out, records+"\n")
	}
	reqs := api.recorded()
	if len(reqs) != 2 || reqs[0].Method != "GET" || reqs[0].Path != "/v1/apps" {
		t.Fatalf("requests: %+v", reqs)
	}
	q := reqs[1]
	if q.Method != "POST" || q.Path != "/stores/query" || q.Query != "consistency=stale" || q.Header.Get("Content-Type") != "application/json" {
		t.Errorf("query request: %s %s?%s %v", q.Method, q.Path, q.Query, q.Header)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(q.Body), &body); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"appName": "TradeApp", "query": hoursQuery, "details": false}; !reflect.DeepEqual(body, want) {
		t.Errorf("query body %v, want %v", body, want)
	}

	// --app skips the lookup; --details is passed on; no --consistency means none in the URL.
	code, out, _ = tally(t, "query", "--addr", api.URL, "--app", "Other", "--details", hoursQuery)
	reqs = api.recorded()[2:]
	if code != 0 || out != withDetails+"\n" || len(reqs) != 1 || reqs[0].Query != "" ||
		!strings.Contains(reqs[0].Body, `"appName":"Other"`) || !strings.Contains(reqs[0].Body, `"details":true`) {
		t.Errorf("--app --details: exit %d, printed %q, requests %+v", code, out, reqs)
	}

	// --table asks for details and prints the names as headers, numbers as written.
	code, out, _ = tally(t, "query", "--addr", api.URL, "--app", "TradeApp", "--table", hoursQuery)
	want := `AGG_TIMESTAMP  symbol  total  avgPrice
1514782800000  wso2    70     100.0
1514786400000  ibm     5      null
(2 rows)
`
	if code != 0 || out != want {
		t.Errorf("--table: exit %d, printed\n%s\nwant\n%s", code, out, want)
	}
}

func TestQueryPicksTheApp(t *testing.T) {
	for _, c := range []struct{ apps, want string }{
		{`{"apps":[]}`, "tally query: no app is deployed: deploy one with 'tally apps deploy FILE.siddhi'\n"},
		{`{"apps":[{"name":"A"},{"name":"B"}]}`, "tally query: 2 apps are deployed (A, B): say which with --app\n"},
	} {
		api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /v1/apps": answer(200, c.apps)})
		code, out, errOut := tally(t, "query", "--addr", api.URL, hoursQuery)
		if code != 1 || out != "" || errOut != c.want {
			t.Errorf("apps %s: exit %d, stdout %q, stderr %q", c.apps, code, out, errOut)
		}
		if reqs := api.recorded(); len(reqs) != 1 {
			t.Errorf("apps %s: %d requests, want only GET /v1/apps", c.apps, len(reqs))
		}
	}
}

func TestQueryError(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /stores/query": answer(404, `{"type":"error","message":"Cannot find an active SiddhiApp with name: Nope"}`),
	})
	code, out, errOut := tally(t, "query", "--addr", api.URL, "--app", "Nope", hoursQuery)
	if code != 1 || out != "" || errOut != "tally query: Cannot find an active SiddhiApp with name: Nope (HTTP 404 Not Found)\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"query"}, 2, "give the store query as one argument"},
		{[]string{"query", "a", "b"}, 2, "give the store query as one argument"},
		{[]string{"query", "-h"}, 0, "usage: tally query"},
		{[]string{"status", "extra"}, 2, "unexpected arguments: extra"},
		{[]string{"ingest", "x.ndjson"}, 2, "--stream is required"},
		{[]string{"ingest", "--stream", "S"}, 2, "give one events file"},
		{[]string{"ingest", "--stream", "S", "--batch", "0", "-"}, 2, "--batch must be at least 1"},
		{[]string{"ingest", "--stream", "S", "--start-seq", "3", "-"}, 2, "give that run's --producer too"},
		{[]string{"apps"}, 2, "usage: tally apps"},
		{[]string{"apps", "frob"}, 2, `unknown subcommand "frob"`},
		{[]string{"apps", "deploy"}, 2, "give one app file"},
		{[]string{"apps", "remove"}, 2, "give the name of one app"},
		{[]string{"status", "--bogus"}, 2, "flag provided but not defined: -bogus"},
	} {
		code, _, errOut := tally(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("tally %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, errOut, c.code, c.want)
		}
	}
	code, out, _ := tally(t, "help")
	for _, cmd := range []string{"status", "query", "ingest", "apps"} {
		if code != 0 || !strings.Contains(out, "\n  "+cmd+" ") {
			t.Errorf("usage does not list %s:\n%s", cmd, out)
		}
	}
}

func TestParseArgs(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	a := fs.String("a", "", "")
	b := fs.Bool("b", false, "")
	pos, err := parseArgs(fs, []string{"p1", "-a", "x", "p2", "--b", "--", "-a", "p3"})
	if err != nil || *a != "x" || !*b || !reflect.DeepEqual(pos, []string{"p1", "p2", "-a", "p3"}) {
		t.Errorf("parseArgs: pos %q a %q b %v err %v", pos, *a, *b, err)
	}
	pos, _ = parseArgs(flag.NewFlagSet("y", flag.ContinueOnError), []string{"-"})
	if !reflect.DeepEqual(pos, []string{"-"}) {
		t.Errorf(`parseArgs("-") = %q`, pos)
	}
}

func TestApps(t *testing.T) {
	app := "@app:name('TradeApp')\ndefine stream TradeStream (symbol string);\n"
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /v1/apps":             answer(201, `{"index":12,"name":"TradeApp"}`),
		"GET /v1/apps":              answer(200, `{"apps":[{"name":"TradeApp","streams":["TradeStream"],"aggregations":["TradeAggregation"],"queries":1},{"name":"Other App","streams":["A","B"],"aggregations":[],"queries":0}]}`),
		"DELETE /v1/apps/Other App": answer(200, `{"index":13,"name":"Other App"}`),
	})
	code, out, errOut := tally(t, "apps", "deploy", "--addr", api.URL, writeFile(t, "trades.siddhi", app))
	if code != 0 || out != "deployed TradeApp (log index 12)\n" {
		t.Errorf("deploy: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// From standard input.
	if code, _, errOut := tallyIn(t, app, "apps", "deploy", "--addr", api.URL, "-"); code != 0 {
		t.Errorf("deploy -: exit %d: %s", code, errOut)
	}
	code, out, _ = tally(t, "apps", "list", "--addr", api.URL)
	want := `NAME       STREAMS      AGGREGATIONS      QUERIES
TradeApp   TradeStream  TradeAggregation  1
Other App  A,B          -                 0
`
	if code != 0 || out != want {
		t.Errorf("list: exit %d, printed\n%s\nwant\n%s", code, out, want)
	}
	code, out, errOut = tally(t, "apps", "remove", "--addr", api.URL, "Other App")
	if code != 0 || out != "removed Other App (log index 13)\n" {
		t.Errorf("remove: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	reqs := api.recorded()
	if len(reqs) != 4 {
		t.Fatalf("requests: %+v", reqs)
	}
	for i, r := range reqs[:2] {
		if r.Method != "POST" || r.Path != "/v1/apps" || r.Body != app || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("deploy request %d: %s %s %q %v", i, r.Method, r.Path, r.Body, r.Header)
		}
	}
	if r := reqs[3]; r.Method != "DELETE" || r.Path != "/v1/apps/Other App" {
		t.Errorf("remove request: %s %s", r.Method, r.Path)
	}

	// A refused app: the parser's message as the server gives it.
	bad := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /v1/apps":        answer(400, `{"error":"siddhiql: 2:1: define table is not supported"}`),
		"DELETE /v1/apps/Nope": answer(404, `{"error":"unknown app \"Nope\""}`),
		"GET /v1/apps":         answer(200, `{"apps":[]}`),
	})
	code, _, errOut = tally(t, "apps", "deploy", "--addr", bad.URL, writeFile(t, "bad.siddhi", "x"))
	if code != 1 || errOut != "tally apps deploy: siddhiql: 2:1: define table is not supported (HTTP 400 Bad Request)\n" {
		t.Errorf("bad deploy: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = tally(t, "apps", "remove", "--addr", bad.URL, "Nope")
	if code != 1 || errOut != "tally apps remove: unknown app \"Nope\" (HTTP 404 Not Found)\n" {
		t.Errorf("bad remove: exit %d, stderr %q", code, errOut)
	}
	code, out, errOut = tally(t, "apps", "list", "--addr", bad.URL)
	if code != 0 || out != "" || errOut != "no apps deployed\n" {
		t.Errorf("empty list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = tally(t, "apps", "deploy", "--addr", bad.URL, filepath.Join(t.TempDir(), "missing.siddhi"))
	if code != 1 || !strings.Contains(errOut, "read app: ") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
}

// ingestFake answers ingest requests: fail(seq, attempt) may answer instead (returning
// true); otherwise 200.
func ingestFake(t *testing.T, fail func(w http.ResponseWriter, seq string, attempt int) bool) *fakeAPI {
	var mu sync.Mutex
	attempts := map[string]int{}
	return newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /v1/streams/TradeStream/events": func(w http.ResponseWriter, r *http.Request) {
			seq := r.Header.Get("Producer-Seq")
			mu.Lock()
			attempts[seq]++
			n := attempts[seq]
			mu.Unlock()
			if fail != nil && fail(w, seq, n) {
				return
			}
			body, _ := io.ReadAll(r.Body)
			events := strings.Count(string(body), "\n")
			answer(200, fmt.Sprintf(`{"group":0,"index":%d,"events":%d,"duplicate":false}`, 10+n, events))(w, r)
		},
	})
}

func events(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"symbol":"wso2","price":100.0,"quantity":%d,"timestamp":1514783400000}`+"\n", i)
	}
	return b.String()
}

func TestIngestRetriesWithTheSameSeq(t *testing.T) {
	api := ingestFake(t, func(w http.ResponseWriter, seq string, attempt int) bool {
		if seq == "2" && attempt <= 2 {
			w.Header().Set("Retry-After", "0")
			answer(503, `{"error":"no leader is known for the group right now; retry shortly"}`)(w, nil)
			return true
		}
		return false
	})
	// A blank line is skipped but counts for line numbers.
	file := writeFile(t, "trades.ndjson", events(3)+"\n"+events(2))
	code, out, errOut := tally(t, "ingest", "--addr", api.URL, "--stream", "TradeStream", "--batch", "2", "--producer", "p1", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "ingested 5 events in ") || !strings.HasSuffix(out, "events/s), 2 retries\n") {
		t.Errorf("summary %q", out)
	}
	if c := strings.Count(errOut, "batch 2 (lines 3-5): no leader is known for the group right now; retry shortly (HTTP 503 Service Unavailable); retry in 0s"); c != 2 {
		t.Errorf("want two retry messages, stderr:\n%s", errOut)
	}
	if !strings.Contains(errOut, "producer p1") {
		t.Errorf("stderr does not name the producer:\n%s", errOut)
	}
	lines := strings.SplitAfter(events(3)+events(2), "\n")
	wantBodies := []string{lines[0] + lines[1], lines[2] + lines[3], lines[2] + lines[3], lines[2] + lines[3], lines[4]}
	var seqs []string
	reqs := api.recorded()
	for i, r := range reqs {
		seqs = append(seqs, r.Header.Get("Producer-Seq"))
		if r.Header.Get("Producer-Id") != "p1" || r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("request %d headers: %v", i, r.Header)
		}
		if i < len(wantBodies) && r.Body != wantBodies[i] {
			t.Errorf("request %d body %q, want %q", i, r.Body, wantBodies[i])
		}
	}
	if want := []string{"1", "2", "2", "2", "3"}; !reflect.DeepEqual(seqs, want) {
		t.Errorf("Producer-Seq of the requests: %q, want %q", seqs, want)
	}
}

func TestIngestStopsOnBadRequest(t *testing.T) {
	api := ingestFake(t, func(w http.ResponseWriter, seq string, _ int) bool {
		if seq == "2" {
			answer(400, `{"error":"event 1: attribute \"price\": want a number (double), got a string","event":1,"field":"price"}`)(w, nil)
			return true
		}
		return false
	})
	file := writeFile(t, "trades.ndjson", events(6))
	code, out, errOut := tally(t, "ingest", "--addr", api.URL, "--stream", "TradeStream", "--batch", "2", "--producer", "p1", file)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	want := file + `:4: event 1 of batch 2 (lines 3-4) refused: event 1: attribute "price": want a number (double), got a string (HTTP 400 Bad Request)` + "\n" +
		"batch 1 had been acknowledged (2 events by this run); to go on from batch 2, rerun with --producer p1 --start-seq 2 --batch 2\n"
	if !strings.HasSuffix(errOut, want) {
		t.Errorf("stderr:\n%s\nwant it to end with\n%s", errOut, want)
	}
	if n := len(api.recorded()); n != 2 {
		t.Errorf("%d requests, want 2 (no retry, no batch after the refused one)", n)
	}
}

func TestIngestResume(t *testing.T) {
	api := ingestFake(t, nil)
	code, out, errOut := tallyIn(t, events(5), "ingest", "--addr", api.URL, "--stream", "TradeStream", "--batch", "2", "--producer", "p7", "--start-seq", "2", "-")
	if code != 0 || !strings.HasPrefix(out, "ingested 3 events") {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "skipped batch 1 (2 events, lines 1-2)") {
		t.Errorf("stderr:\n%s", errOut)
	}
	reqs := api.recorded()
	lines := strings.SplitAfter(events(5), "\n")
	if len(reqs) != 2 || reqs[0].Header.Get("Producer-Seq") != "2" || reqs[0].Body != lines[2]+lines[3] ||
		reqs[1].Header.Get("Producer-Seq") != "3" || reqs[1].Body != lines[4] {
		t.Errorf("requests: %+v", reqs)
	}

	// Past the end of the input.
	code, _, errOut = tallyIn(t, events(2), "ingest", "--addr", api.URL, "--stream", "TradeStream", "--batch", "2", "--producer", "p7", "--start-seq", "3", "-")
	if code != 1 || !strings.Contains(errOut, "--start-seq 3: stdin has only 1 batches of 2 events") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestIngestDuplicateAndRandomProducer(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /v1/streams/TradeStream/events": answer(200, `{"group":0,"index":5,"events":1,"duplicate":true}`),
	})
	code, out, errOut := tallyIn(t, events(1), "ingest", "--addr", api.URL, "--stream", "TradeStream", "-")
	if code != 0 || !strings.HasPrefix(out, "ingested 0 events in ") || !strings.HasSuffix(out, "0 retries; 1 more events in 1 batches had been applied before (same producer and seq), so not again\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id := api.recorded()[0].Header.Get("Producer-Id")
	if !strings.HasPrefix(id, "ingest-") || !strings.Contains(errOut, "producer "+id+" ") {
		t.Errorf("Producer-Id %q; stderr %q", id, errOut)
	}
}

func TestIngestBadLine(t *testing.T) {
	api := ingestFake(t, nil)
	code, _, errOut := tallyIn(t, events(2)+"[1,2]\n", "ingest", "--addr", api.URL, "--stream", "TradeStream", "--batch", "2", "--producer", "p", "-")
	if code != 1 || !strings.Contains(errOut, "stdin:3: not a JSON object") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if n := len(api.recorded()); n != 1 {
		t.Errorf("%d requests, want the one full batch before the bad line", n)
	}
}

// TestIngestNetworkErrors retries a batch whose connection broke, with the same seq, and
// gives up after --retry-for.
func TestIngestNetworkErrors(t *testing.T) {
	var mu sync.Mutex
	var seqs []string
	broken, always := 1, false // drop the first request's connection, or every one
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		seqs = append(seqs, r.Header.Get("Producer-Seq"))
		drop := broken > 0 || always
		broken--
		mu.Unlock()
		if drop {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		answer(200, `{"group":0,"index":1,"events":1,"duplicate":false}`)(w, r)
	}))
	defer srv.Close()
	c, err := newClient(srv.URL, time.Second, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingestConfig{stream: "TradeStream", producer: "p", file: "stdin", batch: 1, startSeq: 1,
		retryFor: time.Minute, backoff: time.Millisecond, maxBackoff: 2 * time.Millisecond, plainEvery: time.Hour}
	var errOut bytes.Buffer
	st, err := ingest(t.Context(), c, cfg, strings.NewReader(events(2)), newProgress(&errOut, 0, time.Hour))
	if err != nil || st.events != 2 || st.retries != 1 {
		t.Fatalf("ingest: %+v, %v", st, err)
	}
	if !reflect.DeepEqual(seqs, []string{"1", "1", "2"}) {
		t.Errorf("Producer-Seq of the requests: %q", seqs)
	}
	if msg := errOut.String(); !strings.Contains(msg, "batch 1 (line 1): ") || !strings.Contains(msg, "POST "+srv.URL+"/v1/streams/TradeStream/events: ") {
		t.Errorf("retry message: %q", errOut.String())
	}

	// Always broken: give up once retrying would pass retryFor.
	mu.Lock()
	always = true
	mu.Unlock()
	cfg.retryFor = 20 * time.Millisecond
	st, err = ingest(t.Context(), c, cfg, strings.NewReader(events(1)), newProgress(io.Discard, 0, time.Hour))
	if err == nil || !strings.Contains(err.Error(), "giving up after retrying for") || st.events != 0 || st.retries == 0 {
		t.Errorf("always broken: %+v, %v", st, err)
	}
}

func TestIngestProgressOnAPipe(t *testing.T) {
	api := ingestFake(t, nil)
	c, _ := newClient(api.URL, time.Second, client.Options{})
	cfg := ingestConfig{stream: "TradeStream", producer: "p", file: "stdin", batch: 1, startSeq: 1, retryFor: time.Second, backoff: time.Millisecond, maxBackoff: time.Millisecond}
	var errOut bytes.Buffer
	// plainEvery 0: a line after every batch.
	if _, err := ingest(t.Context(), c, cfg, strings.NewReader(events(2)), newProgress(&errOut, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(errOut.String(), " events sent ("); got != 2 || strings.Contains(errOut.String(), "\r") {
		t.Errorf("progress on a pipe:\n%q", errOut.String())
	}
}
