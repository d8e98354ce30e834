package systest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/internal/geoiptest"
	"github.com/tally-db/tally/internal/mariadbtest"
)

// geoApp has the shape of API-M Analytics' geo location summary: requests resolve the
// user's country and city from the IP, and GeoLocationAgg counts them by API, country and
// city, mirrored to the shared store.
const geoApp = `@app:name('GeoSummary')
define stream Request (apiName string, apiContext string, userIp string, requestTimestamp long);
define stream geoTempStream (apiName string, apiContext string, country string, city string, requestTimestamp long);
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB', field.length = "apiContext:200, country:100, city:100, SHARD_ID:20")
define aggregation GeoLocationAgg
from geoTempStream
select apiName, country, city, count() as totalCount
group by apiContext, country, city
aggregate by requestTimestamp every seconds...years;
from Request
select apiName, apiContext,
  ifThenElse(geo:findCountryFromIP(userIp) == "", "N/A", geo:findCountryFromIP(userIp)) as country,
  ifThenElse(geo:findCityFromIP(userIp) == "", "N/A", geo:findCityFromIP(userIp)) as city,
  requestTimestamp
insert into geoTempStream;
`

// TestAPIM_GeoLocationActiveActive is WSO2's active-active example for API-M Analytics:
// two clusters with their own shard IDs share one MariaDB; 30,000 requests from Naples
// reach cluster 1 and 40,000 cluster 2; after the flush GeoLocationAgg answers 70,000 for
// Naples on both clusters and in SQL.
func TestAPIM_GeoLocationActiveActive(t *testing.T) {
	dsn, _ := mariadbtest.Start(t)
	geo := filepath.Join(t.TempDir(), "geo.mmdb")
	geoiptest.Write(t, geo)
	a := newCluster(t, 1, "--shard-id", "apim-1", "--store-dsn", dsn, "--geoip-db", geo)
	b := newCluster(t, 1, "--shard-id", "apim-2", "--store-dsn", dsn, "--geoip-db", geo)
	for _, c := range []*cluster{a, b} {
		if code, body := c.deploy(c.nodes[0], geoApp); code != 201 {
			t.Fatalf("deploy: %d %s", code, body)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	const ts = 1514783400000 // 2018-01-01 05:10 UTC
	const batch = 2000
	send := func(c *cluster, n int) {
		ev := fmt.Sprintf(`{"apiName":"PizzaAPI","apiContext":"/pizza/1.0","userIp":%q,"requestTimestamp":%d}`, geoiptest.NaplesIP, ts)
		events := make([]string, batch)
		for i := range events {
			events[i] = ev
		}
		for sent := 0; sent < n; sent += batch {
			if code, _, body, err := c.post(ctx, c.nodes[0], "Request", "", "", 0, events); err != nil || code != 200 {
				t.Fatalf("ingest: %d %s %v", code, body, err)
			}
		}
	}
	send(a, 30000)
	send(b, 40000)

	db := openSQL(t, dsn)
	shards := map[string]int64{}
	a.eventually(20*time.Second, "both shards' Naples rows in GeoLocationAgg_HOURS", func() bool {
		rows, err := db.QueryContext(ctx, "SELECT SHARD_ID, SUM(AGG_COUNT) FROM GeoLocationAgg_HOURS WHERE city = 'Naples' AND country = 'Italy' GROUP BY SHARD_ID")
		if err != nil {
			return false
		}
		defer rows.Close()
		clear(shards)
		for rows.Next() {
			var s string
			var n int64
			if rows.Scan(&s, &n) != nil {
				return false
			}
			shards[s] = n
		}
		return rows.Err() == nil && shards["apim-1"] == 30000 && shards["apim-2"] == 40000
	})
	// A flush writes each granularity's table in its own transaction, so the days rows
	// may land a moment after the hours rows.
	var total int64
	var err error
	a.eventually(10*time.Second, "70,000 Naples requests in GeoLocationAgg_DAYS", func() bool {
		err = db.QueryRowContext(ctx, "SELECT SUM(AGG_COUNT) FROM GeoLocationAgg_DAYS WHERE city = 'Naples'").Scan(&total)
		return err == nil && total == 70000
	})

	q := `from GeoLocationAgg within 0L, 9999999999999L per "days" select country, city, totalCount`
	const want = `{"records":[["Italy","Naples",70000]]}`
	for _, c := range []*cluster{a, b} {
		for _, consistency := range []string{"linearizable", "stored"} {
			got, err := geoQuery(c, q, consistency)
			if err != nil || got != want {
				t.Errorf("%s consistency=%s: %s %v; want %s", c.nodes[0].args[2], consistency, got, err, want)
			}
		}
	}
}

func geoQuery(c *cluster, query, consistency string) (string, error) {
	body, _ := json.Marshal(map[string]string{"appName": "GeoSummary", "query": query})
	resp, err := c.http.Post(fmt.Sprintf("http://%s/stores/query?consistency=%s", c.nodes[0].httpAddr, consistency), "application/json", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}
