package systest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStoreAndSinkSafety starts a real node with --sink-allow and checks what it refuses
// and hides: sinks aimed at the cloud metadata address or outside the allow-list (400),
// a group-by string longer than its column (400), an aggregation name too long for the
// store and a second aggregation on an existing table (400, never 503); secrets are ***
// in the apps and sinks lists; a sink that redirects is not followed; the data dir and
// the SQLite store file are 0700/0600.
func TestStoreAndSinkSafety(t *testing.T) {
	var posts, stolen atomic.Int64
	thief := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { stolen.Add(1) }))
	defer thief.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Redirect(w, r, thief.URL+"/x", http.StatusFound)
	}))
	defer hook.Close()
	c := newCluster(t, 1, "--sink-allow", "127.0.0.1")
	nd := c.nodes[0]
	deploy := func(app string) (int, string) {
		resp, err := c.http.Post("http://"+nd.httpAddr+"/v1/apps", "text/plain", strings.NewReader(app))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sinkApp := func(url string) string {
		return `@app:name('Hooks')
define stream In (symbol string, quantity long);
@sink(type='http', publisher.url='` + url + `', headers="'Authorization:Bearer s3cr3t'", retry.interval='50 millisec')
define stream Out (symbol string, quantity long);
from In select symbol, quantity insert into Out;`
	}
	for _, tc := range []struct{ name, app, want string }{
		{"metadata address", sinkApp("http://169.254.169.254/latest/meta-data/"), "link-local"},
		{"outside the allow-list", sinkApp("http://hooks.example/in"), "not allowed by --sink-allow 127.0.0.1"},
		{"name too long", `@app:name('Long')
define stream L (k string, v long);
define aggregation ` + strings.Repeat("A", 60) + ` from L select k, sum(v) as total group by k aggregate every sec;`, "more than the 64"},
		{"duplicate table", `@app:name('Dup')
define stream D (symbol string, v long);
define aggregation tradeAGGREGATION from D select symbol, sum(v) as total group by symbol aggregate every sec;`, "app TradeApp"},
	} {
		if code, body := deploy(tc.app); code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.name, code, body, tc.want)
		}
	}
	hookURL := strings.Replace(hook.URL, "http://", "http://bob:hunter2@", 1) + "/in"
	if code, body := deploy(sinkApp(hookURL)); code != 201 {
		t.Fatalf("allowed sink: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+nd.httpAddr+"/v1/streams/In/events", strings.NewReader(`{"symbol":"a","quantity":1}`))
	if resp, err := c.http.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("ingest into In: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	c.eventually(10*time.Second, "the redirecting hook is retried", func() bool { return posts.Load() >= 2 })
	if stolen.Load() != 0 {
		t.Errorf("the sink followed the redirect %d times", stolen.Load())
	}
	for _, path := range []string{"/v1/apps?text=true", "/v1/sinks"} {
		resp, err := c.http.Get("http://" + nd.httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "s3cr3t") || !strings.Contains(string(b), "bob:***@") {
			t.Errorf("%s does not hide the secrets: %s", path, b)
		}
	}

	res, err := c.ingest(ctx, nd, "", 0, fmt.Sprintf(`{"symbol":"%s","price":1.0,"quantity":1,"timestamp":1514783400000}`, strings.Repeat("s", 300)))
	if err != nil || res.code != 400 || !strings.Contains(res.body, "attribute symbol is 300 characters long, more than the 254") {
		t.Errorf("300-character group-by value: %+v %v", res, err)
	}

	for _, root := range []string{nd.dataDir, filepath.Join(c.dir, "tally-store.db")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is %#o: group or others can read it", path, info.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}
