package systest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"
)

const stockApp = `@app:name('Stock')
define stream StockStream (symbol string, volume long);
@primaryKey('symbol')
define table StockTable (symbol string, volume long);
from StockStream select symbol, volume
  update or insert into StockTable set StockTable.volume = StockTable.volume + volume on StockTable.symbol == symbol;
`

// storeQuery posts an on-demand query to nd and returns the status and body.
func (c *cluster) storeQuery(nd *node, consistency, query string) (int, string, error) {
	body, _ := json.Marshal(map[string]string{"appName": "Stock", "query": query})
	resp, err := c.http.Post(fmt.Sprintf("http://%s/stores/query?consistency=%s", nd.httpAddr, consistency), "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b)), nil
}

// TestCluster_Tables: a table kept by a query and by on-demand writes sent to a follower is
// the same on every replica, and survives the loss of the leader.
func TestCluster_Tables(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader(10 * time.Second)
	follower := c.followers(leader)[0]
	if code, body := c.deploy(follower, stockApp); code != 201 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := []string{`{"symbol":"IBM","volume":10}`, `{"symbol":"WSO2","volume":5}`, `{"symbol":"IBM","volume":1}`}
	if code, _, body, err := c.post(ctx, follower, "StockStream", "", "", 0, events); err != nil || code != 200 {
		t.Fatalf("ingest: %d %s %v", code, body, err)
	}
	for _, w := range []string{
		"select 'GOOG' as symbol, 7L as volume insert into StockTable",
		"update StockTable set StockTable.volume = StockTable.volume * 2 on StockTable.symbol == 'WSO2'",
	} {
		if code, body, err := c.storeQuery(follower, "linearizable", w); err != nil || code != 200 || body != `{"records":[]}` {
			t.Fatalf("write %q through a follower: %d %s %v", w, code, body, err)
		}
	}
	const want = `{"records":[["IBM",11],["WSO2",10],["GOOG",7]]}`
	if code, body, err := c.storeQuery(follower, "linearizable", "from StockTable"); err != nil || code != 200 || body != want {
		t.Fatalf("linearizable read: %d %s %v, want %s", code, body, err, want)
	}
	for _, nd := range c.nodes {
		c.eventually(10*time.Second, "replica "+nd.id+" holds the table", func() bool {
			_, body, err := c.storeQuery(nd, "stale", "from StockTable")
			return err == nil && body == want
		})
	}
	c.kill(leader)
	survivor := c.followers(leader)[0]
	c.eventually(15*time.Second, "the table through the new leader", func() bool {
		code, body, err := c.storeQuery(survivor, "linearizable", "from StockTable")
		return err == nil && code == 200 && body == want
	})
}
