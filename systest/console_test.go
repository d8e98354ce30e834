package systest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium, installing it when it is missing and the test runs as
// root (as internal/mariadbtest does MariaDB). Without it the test fails: it never skips.
func chromium(t *testing.T) string {
	t.Helper()
	find := func() string {
		for _, n := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	if os.Geteuid() != 0 {
		t.Fatal("the console test needs headless Chromium: install it with `sudo apt-get install -y chromium` (Debian/Ubuntu), or run the test as root so it installs it itself")
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "tally-chromium-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("chromium install lock: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("chromium install lock: %v", err)
	}
	if p := find(); p != "" {
		return p // installed by a test binary that held the lock before us
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	aptGet := func(args ...string) ([]byte, error) {
		t.Logf("chromium not found; running apt-get %v", args)
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := aptGet("install", "-y", "chromium"); err != nil {
		// A fresh machine has no package lists yet.
		if out, err := aptGet("update"); err != nil {
			t.Fatalf("apt-get update: %v\n%s", err, out)
		}
		if out, err := aptGet("install", "-y", "chromium"); err != nil {
			t.Fatalf("apt-get install -y chromium: %v\n%s", err, out)
		}
	}
	p := find()
	if p == "" {
		t.Fatal("installed Debian's chromium but there is still no chromium on PATH")
	}
	return p
}

// artifactDir is where a test leaves files for people to look at: $TALLY_TEST_ARTIFACTS
// when set, else the test's temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("TALLY_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is one headless Chromium tab, with what its page writes to the console.
type browser struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	dir    string

	mu       sync.Mutex
	problems []string
	done     chan struct{}
}

// newBrowser starts headless Chromium with one tab; every action on it ends within
// timeout. An uncaught exception or a console error counts as a problem unless ignore
// says it is expected.
func newBrowser(t *testing.T, timeout time.Duration, ignore func(chromedp.ConsoleMessage) bool) *browser {
	t.Helper()
	exe := chromium(t)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))...)
	tctx, tcancel := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(tctx, timeout)
	b := &browser{t: t, ctx: ctx, dir: artifactDir(t), done: make(chan struct{})}
	b.cancel = func() { cancel(); tcancel(); acancel() }
	t.Cleanup(b.cancel)
	if err := chromedp.Do(ctx); err != nil { // start the browser and its tab
		t.Fatalf("start chromium (%s): %v", exe, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		defer close(b.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.IsException() || m.Type == chromedp.ConsoleError) && (ignore == nil || !ignore(m)) {
				b.mu.Lock()
				b.problems = append(b.problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// finish closes the browser and fails the test if the page threw or logged an error.
func (b *browser) finish() {
	b.t.Helper()
	b.cancel()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Errorf("the page logged errors:\n%s", strings.Join(b.problems, "\n"))
	}
}

// do runs actions, failing the test (with a screenshot) if they do not complete.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.shot("console-failed.png")
		b.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript condition for at most d.
func (b *browser) wait(what, expr string, d time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d))); err != nil {
		b.shot("console-failed.png")
		b.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// shot saves a PNG of the whole page.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestConsole_Browser opens the web console of a three-node cluster in headless Chromium:
// the cluster view lists the three nodes, a store query typed into the query box shows its
// rows as a table and a chart, an app is deployed (and a bad one refused with the server's
// message), its sink and live outputs show, it is removed, and the page throws nothing and
// logs no unexpected error.
func TestConsole_Browser(t *testing.T) {
	c := newCluster(t, 3)
	nd := c.nodes[0]   // events go here
	page := c.nodes[1] // the console is opened here: any node serves it

	// Three per-second buckets, two symbols.
	const base = 1514783400000
	var events []string
	want := map[string]string{} // "time|symbol" -> total
	for i := range 3 {
		for j, sym := range []string{"IBM", "WSO2"} {
			qty := 10*(i+1) + j
			events = append(events, fmt.Sprintf(`{"symbol":%q,"price":10.0,"quantity":%d,"timestamp":%d}`, sym, qty, base+int64(i)*1000))
			want[fmt.Sprintf("%s|%s", time.UnixMilli(base+int64(i)*1000).UTC().Format("2006-01-02 15:04:05Z"), sym)] = fmt.Sprint(qty)
		}
	}
	postEvents(t, c, nd, "TradeStream", events...)

	// The browser logs the 400 the bad deploy below provokes on purpose.
	b := newBrowser(t, 45*time.Second, func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.Contains(m.Text, "status of 400")
	})
	b.do("open the console", chromedp.Navigate("http://"+page.httpAddr+"/ui"))
	b.wait("the three nodes", `document.querySelectorAll("#nodes tbody tr[data-node]").length === 3`, 15*time.Second)
	nodes := eval[[]string](b, `[...document.querySelectorAll("#nodes tbody tr[data-node]")].map(r => r.dataset.node)`)
	if !slices.Equal(nodes, []string{"n1", "n2", "n3"}) {
		t.Errorf("cluster view lists nodes %v, want [n1 n2 n3]", nodes)
	}
	// From the cluster map: every node active and holding the one group's replica, no move.
	b.wait("the cluster map's columns", `[...document.querySelectorAll("#nodes tbody td[data-col=state]")].map(c => c.textContent).join() === "active,active,active" && !document.querySelector("#moves-box").hidden`, 15*time.Second)
	if held := eval[[]string](b, `[...document.querySelectorAll("#nodes tbody td[data-col=replicas]")].map(c => c.textContent)`); !slices.Equal(held, []string{"1", "1", "1"}) {
		t.Errorf("replicas per node %v, want [1 1 1]", held)
	}
	if moves := eval[string](b, `document.querySelector("#moves").textContent`); moves != "none" {
		t.Errorf("moves in progress show %q, want none", moves)
	}
	if leader := eval[string](b, `document.querySelector("#groups tbody td:nth-child(4)").textContent`); !slices.Contains(nodes, leader) {
		t.Errorf("group 0's leader cell shows %q, want one of the nodes", leader)
	}
	if this := eval[string](b, `document.querySelector("#node-id").textContent`); this != "node "+page.id {
		t.Errorf("header names %q, want node %s", this, page.id)
	}
	b.shot("console-cluster.png")

	// The query tab: pick the app, type a per-second query, run it.
	b.do("open the query tab", chromedp.Click(`#tabs button[data-tab="query"]`))
	b.wait("the app list", `document.querySelector('#query-app option[value="TradeApp"]') !== null`, 10*time.Second)
	b.do("run the query in the page",
		chromedp.SetValue(`#query-app`, "TradeApp"),
		chromedp.SetValue(`#query-text`, `from TradeAggregation within 0L, 9999999999999L per "seconds" select AGG_TIMESTAMP, symbol, total`),
		chromedp.Click(`#query-run`))
	b.wait("the query's rows", fmt.Sprintf(`document.querySelectorAll("#query-result tbody tr").length === %d`, len(want)), 10*time.Second)
	if head := eval[[]string](b, `[...document.querySelectorAll("#query-result thead th")].map(c => c.textContent)`); !slices.Equal(head, []string{"AGG_TIMESTAMP", "symbol", "total"}) {
		t.Errorf("table header %v", head)
	}
	got := map[string]string{}
	for _, r := range eval[[][]string](b, `[...document.querySelectorAll("#query-result tbody tr")].map(r => [...r.cells].map(c => c.textContent))`) {
		if len(r) != 3 {
			t.Fatalf("row %v has %d cells, want 3", r, len(r))
		}
		got[r[0]+"|"+r[1]] = r[2]
	}
	if !maps.Equal(got, want) {
		t.Errorf("table rows (time|symbol: total) %v, want %v", got, want)
	}
	if lines := eval[int](b, `document.querySelectorAll("#chart svg polyline").length`); lines != 2 {
		t.Errorf("chart has %d lines, want one per symbol (2)", lines)
	}
	b.shot("console-query.png")
	// One bucket: a bar per symbol.
	b.do("run a per-minute query",
		chromedp.SetValue(`#query-text`, `from TradeAggregation within 0L, 9999999999999L per "minutes" select AGG_TIMESTAMP, symbol, total`),
		chromedp.Click(`#query-run`))
	b.wait("the per-minute bars", `document.querySelectorAll("#query-result tbody tr").length === 2 && document.querySelectorAll("#chart svg rect.bar").length === 2`, 10*time.Second)
	if bars := eval[[]string](b, `[...document.querySelectorAll("#chart svg rect.bar title")].map(t => t.textContent)`); !slices.Equal(bars, []string{"IBM: 60", "WSO2: 63"}) {
		t.Errorf("bars %q, want IBM: 60 and WSO2: 63", bars)
	}
	b.shot("console-bars.png")
	// Per year from this node's own replica, which may apply the events a moment after the
	// leader: run it until the answer is complete. No AGG_TIMESTAMP column, no chart.
	b.do("choose stale reads",
		chromedp.SetValue(`#query-consistency`, "stale"),
		chromedp.SetValue(`#query-text`, `from TradeAggregation within 0L, 9999999999999L per "years" select symbol, total`))
	wantYear := [][]string{{"IBM", "60"}, {"WSO2", "63"}}
	var year [][]string
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.do("run a stale query", chromedp.Evaluate[chromedp.Void](`document.querySelector("#query-status").textContent = ""`), chromedp.Click(`#query-run`))
		b.wait("the stale answer", `/^\d+ rows? in/.test(document.querySelector("#query-status").textContent)`, 10*time.Second)
		year = eval[[][]string](b, `[...document.querySelectorAll("#query-result tbody tr")].map(r => [...r.cells].map(c => c.textContent))`)
		if slices.EqualFunc(year, wantYear, slices.Equal) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.EqualFunc(year, wantYear, slices.Equal) {
		t.Errorf("stale per-year rows %v, want %v", year, wantYear)
	}
	if !eval[bool](b, `document.querySelector("#chart-box").hidden`) {
		t.Error("a query without AGG_TIMESTAMP shows a chart")
	}

	// Apps: the trade app's text is listed; a bad app shows the server's message; a good one
	// deploys, its sink shows on the sinks tab, its outputs arrive live, and it is removed.
	b.do("open the apps tab", chromedp.Click(`#tabs button[data-tab="apps"]`))
	b.wait("the trade app's text", `(document.querySelector('.app[data-app="TradeApp"] pre') || {}).textContent?.includes("define aggregation TradeAggregation")`, 10*time.Second)
	b.do("deploy a bad app", chromedp.SetValue(`#deploy-text`, "@app:name('Broken')\ndefine stream S (a nosuchtype);"), chromedp.Click(`#deploy`))
	b.wait("the deploy error", `document.querySelector("#deploy-result").className === "error"`, 10*time.Second)
	if msg := eval[string](b, `document.querySelector("#deploy-result").textContent`); !strings.Contains(msg, "nosuchtype") {
		t.Errorf("a bad app shows %q, want the server's message naming the bad type", msg)
	}
	b.do("deploy an app", chromedp.SetValue(`#deploy-text`, consoleAlertApp), chromedp.Click(`#deploy`))
	b.wait("the deployed app in the list", `document.querySelector('.app[data-app="AlertApp"]') !== null`, 10*time.Second)
	b.shot("console-apps.png")

	b.do("open the sinks tab", chromedp.Click(`#tabs button[data-tab="sinks"]`))
	b.wait("the log sink", `[...document.querySelectorAll("#sinks tbody tr")].some(r => r.cells[2].textContent === "BigTrades" && r.cells[4].textContent === "log")`, 10*time.Second)

	b.do("subscribe from the page",
		chromedp.Click(`#tabs button[data-tab="live"]`),
		chromedp.SetValue(`#live-stream`, "BigTrades"),
		chromedp.Click(`#live-start`))
	b.wait("the subscription", `document.querySelector("#live-status").textContent.startsWith("subscribed")`, 5*time.Second)
	waitLive(t, b, c, nd)
	b.shot("console-live.png")
	b.do("stop the subscription", chromedp.Click(`#live-stop`))

	// Remove, confirming the browser's dialog.
	eval[bool](b, `(window.confirm = () => true, true)`)
	b.do("remove from the page",
		chromedp.Click(`#tabs button[data-tab="apps"]`),
		chromedp.Click(`.app[data-app="AlertApp"] button.danger`))
	b.wait("the removed app to leave the list", `document.querySelector('.app[data-app="AlertApp"]') === null && document.querySelector('.app[data-app="TradeApp"]') !== null`, 10*time.Second)
	var apps struct{ Apps []struct{ Name string } }
	if err := c.getJSON(nd, "/v1/apps", &apps); err != nil || len(apps.Apps) != 1 || apps.Apps[0].Name != "TradeApp" {
		t.Errorf("after removal the node has apps %+v (%v), want only TradeApp", apps.Apps, err)
	}
	b.finish()
}

// waitLive sends events to nd's alert app until the live tab shows an output (the
// subscription follows new outputs only, and may open just after a first event), then
// checks the newest row.
func waitLive(t *testing.T, b *browser, c *cluster, nd *node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for seq := 1; ; seq++ {
		postEvents(t, c, nd, "Big", fmt.Sprintf(`{"symbol":"ACME","quantity":%d}`, 500+seq), `{"symbol":"ACME","quantity":5}`)
		if eval[int](b, `document.querySelectorAll("#live tbody tr").length`) > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.shot("console-failed.png")
			t.Fatal("no live output shown within 10s")
		}
		time.Sleep(300 * time.Millisecond)
	}
	live := eval[[]string](b, `[...document.querySelector("#live tbody tr").cells].map(c => c.textContent)`)
	if len(live) != 4 || live[2] != "output" || !regexp.MustCompile(`"symbol":"ACME","quantity":5\d\d}`).MatchString(live[3]) {
		t.Errorf("live output row %q, want an ACME output with quantity over 500", live)
	}
}

// consoleAlertApp is deployed from the console's page: a filter whose output has a log sink.
const consoleAlertApp = `@app:name('AlertApp')
define stream Big (symbol string, quantity long);
@sink(type='log', prefix='big')
define stream BigTrades (symbol string, quantity long);
from Big[quantity > 100] select symbol, quantity insert into BigTrades;
`

// postEvents sends NDJSON events to a stream of nd and fails the test unless they are taken.
func postEvents(t *testing.T, c *cluster, nd *node, stream string, events ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+nd.httpAddr+"/v1/streams/"+stream+"/events", strings.NewReader(strings.Join(events, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("post to %s: %v", stream, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("post to %s: %d %s", stream, resp.StatusCode, b)
	}
}

// TestConsole_SignIn puts the console behind a proxy that asks for HTTP Basic credentials
// on every API call (the page itself stays open): the page shows its sign-in form on the
// first 401, then sends the credentials with every call, the live tab's subscription
// included, and forgets them on sign-out.
func TestConsole_SignIn(t *testing.T) {
	c := newCluster(t, 1)
	nd := c.nodes[0]
	resp, err := c.http.Post("http://"+nd.httpAddr+"/v1/apps", "text/plain", strings.NewReader(consoleAlertApp))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("deploy the alert app: %d", resp.StatusCode)
	}

	target, err := url.Parse("http://" + nd.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The status gains a field this node does not report, as a newer node might: the page
	// shows it as it is.
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/v1/cluster/status" || resp.StatusCode != http.StatusOK {
			return nil
		}
		var st map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return fmt.Errorf("decode status: %w", err)
		}
		resp.Body.Close()
		st["moves"] = json.RawMessage(`[{"group":0,"from":"n1","to":"n9","state":"catching-up"}]`)
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	var (
		mu         sync.Mutex
		refused    int
		authorized []string
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ui" && !strings.HasPrefix(r.URL.Path, "/ui/") {
			user, pass, ok := r.BasicAuth()
			mu.Lock()
			if !ok || user != "admin" || pass != "s3cret" {
				refused++
				mu.Unlock()
				w.Header().Set("WWW-Authenticate", `Basic realm="tally"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"error":"credentials required"}`)
				return
			}
			authorized = append(authorized, r.URL.Path)
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	b := newBrowser(t, 40*time.Second, func(m chromedp.ConsoleMessage) bool {
		return m.Source == "network" && strings.Contains(m.Text, "status of 401")
	})
	b.do("open the console", chromedp.Navigate("http://"+ln.Addr().String()+"/ui/"))
	b.wait("the sign-in form", `!document.querySelector("#login").hidden && document.querySelector("#login-reason").textContent.includes("credentials required")`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll("#nodes tbody tr").length`); n != 0 {
		t.Errorf("the cluster view shows %d nodes without credentials", n)
	}
	b.shot("console-signin.png")
	b.do("sign in",
		chromedp.SetValue(`#login-user`, "admin"),
		chromedp.SetValue(`#login-pass`, "s3cret"),
		chromedp.Click(`#login-form button[type="submit"]`))
	b.wait("the cluster view", `document.querySelectorAll("#nodes tbody tr[data-node]").length === 1 && document.querySelector("#login").hidden`, 10*time.Second)
	move := eval[[]string](b, `[...document.querySelectorAll('#cluster-extra [data-key="moves"] tbody td')].map(c => c.textContent)`)
	if !slices.Equal(move, []string{"0", "n1", "n9", "catching-up"}) {
		t.Errorf("the status's extra field shows as %q, want its one move", move)
	}
	b.shot("console-extra.png")
	if who := eval[string](b, `document.querySelector("#whoami").textContent`); who != "signed in as admin" {
		t.Errorf("header says %q, want signed in as admin", who)
	}
	mu.Lock()
	refusedAtSignIn := refused
	mu.Unlock()

	b.do("subscribe from the page",
		chromedp.Click(`#tabs button[data-tab="live"]`),
		chromedp.SetValue(`#live-stream`, "BigTrades"),
		chromedp.Click(`#live-start`))
	b.wait("the subscription", `document.querySelector("#live-status").textContent.startsWith("subscribed")`, 5*time.Second)
	waitLive(t, b, c, nd)
	b.do("stop the subscription", chromedp.Click(`#live-stop`))
	b.do("open the apps tab", chromedp.Click(`#tabs button[data-tab="apps"]`))
	b.wait("the apps", `document.querySelector('.app[data-app="AlertApp"]') !== null`, 10*time.Second)

	mu.Lock()
	if refused != refusedAtSignIn {
		t.Errorf("%d API calls went without credentials after signing in", refused-refusedAtSignIn)
	}
	if !slices.Contains(authorized, "/v1/streams/BigTrades/subscribe") {
		t.Errorf("the subscription did not carry the credentials; authorized calls: %v", authorized)
	}
	mu.Unlock()

	b.do("sign out", chromedp.Click(`#signout`))
	if got := eval[[]any](b, `[document.querySelector("#whoami").textContent, document.querySelector("#signin-open").hidden, sessionStorage.length]`); got[0] != "" || got[1] != false || got[2] != float64(0) {
		t.Errorf("after signing out: whoami %q, sign-in hidden %v, %v items in sessionStorage", got[0], got[1], got[2])
	}
	b.finish()
}
