package httpapi

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/store"
)

// sinkApp has an http sink with a URL password and an Authorization header, and a
// @store with a password.
const sinkApp = `@app:name('Hooks')
define stream In (k string, v long);
@sink(type='http', publisher.url='http://bob:hunter2@127.0.0.1:9/in', headers="'Authorization:Bearer s3cr3t'", retry.interval='1 sec')
define stream Out (k string, v long);
@store(type='rdbms', password='rootpw')
define aggregation HookAgg from In select k, sum(v) as total group by k aggregate every sec;
from In select k, v insert into Out;
`

// TestSecretsRedacted: the apps list with text=true and the sinks list show sink headers,
// URL passwords and store passwords as ***; the replicated text keeps them.
func TestSecretsRedacted(t *testing.T) {
	n, srv := newSingleNode(t, Config{})
	if r := do(t, "POST", srv.URL+"/v1/apps", sinkApp); r.code != 201 {
		t.Fatalf("deploy: %d %s", r.code, r.body)
	}
	apps := do(t, "GET", srv.URL+"/v1/apps?text=true", "")
	sinks := do(t, "GET", srv.URL+"/v1/sinks", "")
	for what, r := range map[string]response{"apps": apps, "sinks": sinks} {
		for _, secret := range []string{"hunter2", "s3cr3t", "rootpw"} {
			if strings.Contains(r.body, secret) {
				t.Errorf("%s shows %q: %s", what, secret, r.body)
			}
		}
	}
	for _, want := range []string{`publisher.url='http://bob:***@127.0.0.1:9/in'`, `'Authorization:***'`, `password='***'`} {
		if !strings.Contains(apps.body, want) {
			t.Errorf("apps text lacks %s: %s", want, apps.body)
		}
	}
	if !strings.Contains(sinks.body, `"url":"http://bob:***@127.0.0.1:9/in"`) {
		t.Errorf("sinks: %s", sinks.body)
	}
	var text string
	n.FSM().Read(func(e fsm.View) {
		if a, ok := e.App("Hooks"); ok {
			text = a.Text()
		}
	})
	if !strings.Contains(text, "hunter2") || !strings.Contains(text, "s3cr3t") {
		t.Errorf("the replicated text lost its secrets: %q", text)
	}
}

// TestDeployRefusalsAre400: what the store, the node's sink policy or another app refuses
// for good answers 400 naming the limit or the owner, never 503 + Retry-After.
func TestDeployRefusalsAre400(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	policy, err := raftnode.ParseSinkPolicy([]string{"hooks.example"})
	if err != nil {
		t.Fatal(err)
	}
	_, srv := newSingleNode(t, Config{}, func(c *raftnode.Config) { c.Store, c.SinkPolicy = st, policy })
	long := strings.Repeat("A", 57)
	for name, tc := range map[string]struct{ app, want string }{
		"name too long": {`@app:name('Long')
define stream L (k string, v long);
define aggregation ` + long + ` from L select k, sum(v) as total group by k aggregate every sec;`, "more than the 64 a table name may have"},
		"sink target":      {strings.Replace(sinkApp, "127.0.0.1:9", "169.254.169.254", 1), "link-local"},
		"sink not allowed": {sinkApp, "host 127.0.0.1 is not allowed by --sink-allow hooks.example"},
		"duplicate table": {`@app:name('Dup')
define stream D (symbol string, v long);
define aggregation tradeaggregation from D select symbol, sum(v) as total group by symbol aggregate every sec;`, "aggregation TradeAggregation of app TradeApp"},
	} {
		r := do(t, "POST", srv.URL+"/v1/apps", tc.app)
		if r.code != 400 || !strings.Contains(r.body, tc.want) || r.header.Get("Retry-After") != "" {
			t.Errorf("%s: %d %s (Retry-After %q), want 400 with %q", name, r.code, r.body, r.header.Get("Retry-After"), tc.want)
		}
		if strings.Contains(r.body, "hunter2") {
			t.Errorf("%s: the error shows the password: %s", name, r.body)
		}
	}
}

// TestIngestLongString: the finding's 300-character group-by value is refused at ingest
// with 400 naming the attribute and the limit; the log gets at most an empty placeholder.
func TestIngestLongString(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	ev := `{"symbol":"` + strings.Repeat("s", 300) + `","price":1.0,"quantity":1,"timestamp":1514783400000}`
	r := do(t, "POST", srv.URL+"/v1/streams/TradeStream/events", ev)
	if r.code != 400 || !strings.Contains(r.body, "attribute symbol is 300 characters long, more than the 254") {
		t.Fatalf("300 characters: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", srv.URL+"/stores/query", totalQuery); r.code != 200 || r.body != `{"records":[]}`+"\n" {
		t.Errorf("after the refused event: %d %s, want no records", r.code, r.body)
	}
	ev = `{"symbol":"` + strings.Repeat("s", 254) + `","price":1.0,"quantity":1,"timestamp":1514783400000}`
	if r := do(t, "POST", srv.URL+"/v1/streams/TradeStream/events", ev); r.code != 200 {
		t.Errorf("254 characters: %d %s", r.code, r.body)
	}
}
