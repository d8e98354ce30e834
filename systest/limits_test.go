package systest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLimits_HugeExpression: a real node answers a 200,000-term expression (in an app and
// in a store query) with 400 naming the limit, and stays ready; with --max-keys 2 a third
// group key answers 503 naming the aggregation.
func TestLimits_HugeExpression(t *testing.T) {
	c := newCluster(t, 1, "--max-keys", "2")
	nd := c.nodes[0]
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := c.http.Post("http://"+nd.httpAddr+path, "text/plain", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	app := "@app:name('Big') define stream B (v long); from B select v" + strings.Repeat("+v", 200000) + " as x insert into O;"
	if code, body := post("/v1/apps", app); code != 400 || !strings.Contains(body, "expression too large (more than 10000 operands and operators)") {
		t.Errorf("deploy: %d %.300s", code, body)
	}
	query := `{"appName":"TradeApp","query":"from TradeAggregation within 0L, 1L per 'hours' select total` + strings.Repeat("+total", 150000) + ` as x"}`
	if code, body := post("/stores/query", query); code != 400 || !strings.Contains(body, `"type":"error"`) {
		t.Errorf("store query: %d %.300s", code, body)
	}
	c.eventually(10*time.Second, "ready after the huge expressions", func() bool {
		resp, err := c.http.Get("http://" + nd.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for i, sym := range []string{"a", "b"} {
		if code, body := post("/v1/streams/TradeStream/events", trade(sym, 1)); code != 200 {
			t.Fatalf("key %d: %d %s", i, code, body)
		}
	}
	if code, body := post("/v1/streams/TradeStream/events", trade("c", 1)); code != 503 || !strings.Contains(body, "TradeAggregation holds 2 group keys") {
		t.Errorf("third key: %d %s", code, body)
	}
}
