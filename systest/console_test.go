package systest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// TestConsole_Browser opens the web console of a three-node cluster in headless Chromium:
// the cluster view lists the three nodes, a store query typed into the query box shows its
// rows as a table and a chart, and the page throws nothing and logs no error.
func TestConsole_Browser(t *testing.T) {
	exe := chromium(t)
	c := newCluster(t, 3)
	nd := c.nodes[0]

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
	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
	res, err := c.ingest(ictx, nd, "", 0, events...)
	icancel()
	if err != nil || res.code != http.StatusOK {
		t.Fatalf("ingest: %v %d %s", err, res.code, res.body)
	}

	dir := artifactDir(t)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 45*time.Second)
	defer cancelTimeout()

	// Collect what the page writes to the console: an exception or an error fails the test.
	var (
		consoleMu sync.Mutex
		problems  []string
	)
	if err := chromedp.Do(ctx); err != nil { // start the browser and its tab
		t.Fatalf("start chromium (%s): %v", exe, err)
	}
	messages := chromedp.Console(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			// The browser logs the 400 the bad deploy provokes on purpose.
			expected := m.Source == "network" && strings.Contains(m.Text, "status of 400")
			if m.IsException() || (m.Type == chromedp.ConsoleError && !expected) {
				consoleMu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				consoleMu.Unlock()
			}
		}
	}()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	wait := func(what, expr string, d time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d))); err != nil {
			_, _ = chromedp.Run(ctx, chromedp.Poll[bool]("true")) // keep the page for the screenshot
			shot("console-failed.png")
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}

	url := "http://" + nd.httpAddr + "/ui"
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	wait("the three nodes", `document.querySelectorAll("#nodes tbody tr[data-node]").length === 3`, 15*time.Second)
	nodes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#nodes tbody tr[data-node]")].map(r => r.dataset.node)`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nodes, []string{"n1", "n2", "n3"}) {
		t.Errorf("cluster view lists nodes %v, want [n1 n2 n3]", nodes)
	}
	leaders, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#groups tbody td:nth-child(4)").textContent`))
	if err != nil || !slices.Contains(nodes, leaders) {
		t.Errorf("group 0's leader cell shows %q (%v), want one of the nodes", leaders, err)
	}
	shot("console-cluster.png")

	// The query tab: pick the app, type a per-second query, run it.
	q := `from TradeAggregation within 0L, 9999999999999L per "seconds" select AGG_TIMESTAMP, symbol, total`
	if err := chromedp.Do(ctx, chromedp.Click(`#tabs button[data-tab="query"]`)); err != nil {
		t.Fatalf("open the query tab: %v", err)
	}
	wait("the app list", `document.querySelector('#query-app option[value="TradeApp"]') !== null`, 10*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(`#query-app`, "TradeApp"),
		chromedp.SetValue(`#query-text`, q),
		chromedp.Click(`#query-run`),
	); err != nil {
		t.Fatalf("run the query in the page: %v", err)
	}
	wait("the query's rows", fmt.Sprintf(`document.querySelectorAll("#query-result tbody tr").length === %d`, len(want)), 10*time.Second)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("#query-result tbody tr")].map(r => [...r.cells].map(c => c.textContent))`))
	if err != nil {
		t.Fatal(err)
	}
	head, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#query-result thead th")].map(c => c.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(head, []string{"AGG_TIMESTAMP", "symbol", "total"}) {
		t.Errorf("table header %v", head)
	}
	got := map[string]string{}
	for _, r := range rows {
		if len(r) != 3 {
			t.Fatalf("row %v has %d cells, want 3", r, len(r))
		}
		got[r[0]+"|"+r[1]] = r[2]
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("table row %s: total %q, want %s", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("table has rows %v, want %v", got, want)
	}
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart svg polyline").length`))
	if err != nil || lines != 2 {
		t.Errorf("chart has %d lines (%v), want one per symbol (2)", lines, err)
	}
	shot("console-query.png")

	// Apps: the trade app's text is listed; a bad app shows the server's message; a good one
	// deploys, its sink shows on the sinks tab, its outputs arrive live, and it is removed.
	if err := chromedp.Do(ctx, chromedp.Click(`#tabs button[data-tab="apps"]`)); err != nil {
		t.Fatalf("open the apps tab: %v", err)
	}
	wait("the trade app's text", `(document.querySelector('.app[data-app="TradeApp"] pre') || {}).textContent?.includes("define aggregation TradeAggregation")`, 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.SetValue(`#deploy-text`, "@app:name('Broken')\ndefine stream S (a nosuchtype);"), chromedp.Click(`#deploy`)); err != nil {
		t.Fatalf("deploy from the page: %v", err)
	}
	wait("the deploy error", `document.querySelector("#deploy-result").className === "error"`, 10*time.Second)
	msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#deploy-result").textContent`))
	if err != nil || !strings.Contains(msg, "nosuchtype") {
		t.Errorf("a bad app shows %q (%v), want the server's message naming the bad type", msg, err)
	}
	if err := chromedp.Do(ctx, chromedp.SetValue(`#deploy-text`, consoleAlertApp), chromedp.Click(`#deploy`)); err != nil {
		t.Fatalf("deploy from the page: %v", err)
	}
	wait("the deployed app in the list", `document.querySelector('.app[data-app="AlertApp"]') !== null`, 10*time.Second)
	shot("console-apps.png")

	if err := chromedp.Do(ctx, chromedp.Click(`#tabs button[data-tab="sinks"]`)); err != nil {
		t.Fatalf("open the sinks tab: %v", err)
	}
	wait("the log sink", `[...document.querySelectorAll("#sinks tbody tr")].some(r => r.cells[2].textContent === "BigTrades" && r.cells[4].textContent === "log")`, 10*time.Second)

	if err := chromedp.Do(ctx,
		chromedp.Click(`#tabs button[data-tab="live"]`),
		chromedp.SetValue(`#live-stream`, "BigTrades"),
		chromedp.Click(`#live-start`),
	); err != nil {
		t.Fatalf("subscribe from the page: %v", err)
	}
	wait("the subscription", `document.querySelector("#live-status").textContent.startsWith("subscribed")`, 5*time.Second)
	// The subscription follows new outputs only: keep sending until one shows.
	deadline := time.Now().Add(10 * time.Second)
	for seq := 1; ; seq++ {
		postEvents(t, c, nd, "Big", fmt.Sprintf(`{"symbol":"ACME","quantity":%d}`, 500+seq), `{"symbol":"ACME","quantity":5}`)
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#live tbody tr").length`))
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			shot("console-failed.png")
			t.Fatal("no live output shown within 10s")
		}
		time.Sleep(300 * time.Millisecond)
	}
	live, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelector("#live tbody tr").cells].map(c => c.textContent)`))
	if err != nil || len(live) != 4 || live[2] != "output" || !strings.Contains(live[3], `"symbol":"ACME"`) || !strings.Contains(live[3], `"quantity":50`) {
		t.Errorf("live output row %q (%v), want an ACME output with quantity over 500", live, err)
	}
	shot("console-live.png")
	if err := chromedp.Do(ctx, chromedp.Click(`#live-stop`)); err != nil {
		t.Fatal(err)
	}

	// Remove, confirming the browser's dialog.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(`#tabs button[data-tab="apps"]`),
		chromedp.Click(`.app[data-app="AlertApp"] button.danger`),
	); err != nil {
		t.Fatalf("remove from the page: %v", err)
	}
	wait("the removed app to leave the list", `document.querySelector('.app[data-app="AlertApp"]') === null && document.querySelector('.app[data-app="TradeApp"]') !== null`, 10*time.Second)
	var apps struct{ Apps []struct{ Name string } }
	if err := c.getJSON(nd, "/v1/apps", &apps); err != nil || len(apps.Apps) != 1 || apps.Apps[0].Name != "TradeApp" {
		t.Errorf("after removal the node has apps %+v (%v), want only TradeApp", apps.Apps, err)
	}

	cancelTimeout()
	<-consoleDone
	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(problems, "\n"))
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("browser session: %v", ctx.Err())
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
	resp, err := c.http.Post("http://"+nd.httpAddr+"/v1/streams/"+stream+"/events", "application/x-ndjson", strings.NewReader(strings.Join(events, "\n")))
	if err != nil {
		t.Fatalf("post to %s: %v", stream, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("post to %s: %d %s", stream, resp.StatusCode, b)
	}
}
