package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStoreQuery_Table(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	app := `@app:name('Stock')
define stream StockStream (symbol string, price double, volume long);
@PrimaryKey('symbol')
define table StockTable (symbol string, price double, volume long);
from StockStream update or insert into StockTable on StockTable.symbol == symbol;
`
	if r := do(t, "POST", srv.URL+"/v1/apps", app); r.code != 201 {
		t.Fatalf("deploy: %d %s", r.code, r.body)
	}
	r := do(t, "POST", srv.URL+"/v1/streams/StockStream/events",
		`[{"symbol":"WSO2","price":55.5,"volume":100},{"symbol":"IBM","price":75.5,"volume":10},{"symbol":"IBM","price":76.5,"volume":20}]`)
	var ack IngestResponse
	if r.code != 200 || json.Unmarshal([]byte(r.body), &ack) != nil {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	for _, c := range []struct {
		url, query string
		code       int
		want       string
	}{
		{"", "from StockTable", 200, `{"records":[["WSO2",55.5,100],["IBM",76.5,20]]}`},
		{"?consistency=stale&min_index=" + itoa(ack.Index), "from StockTable on volume > 50 select symbol", 200, `{"records":[["WSO2"]]}`},
		{"", "from StockTable select sum(volume) as v", 200, `{"records":[[120]]}`},
		{"", "from StockTable select symbol order by symbol limit 1", 200, `{"records":[["IBM"]]}`},
		{"", "from StockTable select nope", 400, `Cannot query: siddhiql: 1:24:`},
		{"?consistency=stored", "from StockTable", 400, `holds no tables`},
		{"", "select 'GOOG' as symbol, 50.5 as price, 5L as volume insert into StockTable", 200, `{"records":[]}`},
		{"", "update StockTable set StockTable.volume = 0L on StockTable.symbol == 'IBM'", 200, `{"records":[]}`},
		{"", "delete StockTable on StockTable.symbol == 'WSO2'", 200, `{"records":[]}`},
		{"", "from StockTable", 200, `{"records":[["IBM",76.5,0],["GOOG",50.5,5]]}`},
		{"", "delete Nope on 1 == 1", 400, `app Stock has no table Nope`},
		{"", "update StockTable set StockTable.volume = 'x' on true", 400, `is string but attribute volume of table StockTable is long`},
	} {
		body, _ := json.Marshal(map[string]string{"appName": "Stock", "query": c.query})
		r := do(t, "POST", srv.URL+"/stores/query"+c.url, string(body))
		if r.code != c.code || !strings.Contains(r.body, c.want) {
			t.Errorf("%s%s: %d %s; want %d with %s", c.query, c.url, r.code, r.body, c.code, c.want)
		}
	}
}
