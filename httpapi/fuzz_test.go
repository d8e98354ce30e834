package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/raftnode"
)

// quietNode is newSingleNode without the Raft log lines (fuzzing runs many inputs).
func quietNode(f *testing.F) (*raftnode.Node, string) {
	n, srv := newSingleNode(f, Config{MaxBodyBytes: 1 << 20}, func(c *raftnode.Config) {
		c.Logger = slog.New(slog.DiscardHandler)
	})
	return n, srv.URL
}

// checkAnswer fails on what no input may cause: a 5xx other than 503 (a node failure), or
// an error answer that is not JSON naming the error.
func checkAnswer(t *testing.T, what string, r response) {
	t.Helper()
	if r.code >= 500 && r.code != http.StatusServiceUnavailable {
		t.Fatalf("%s: %d %s", what, r.code, r.body)
	}
	if r.code >= 400 {
		var v map[string]any
		if err := json.Unmarshal([]byte(r.body), &v); err != nil || (v["error"] == nil && v["message"] == nil) {
			t.Fatalf("%s: %d with a body that names no error: %s", what, r.code, r.body)
		}
	}
}

// FuzzIngest posts arbitrary bodies and producer headers to the ingest handler of an
// in-process node: every answer is 200 or a 4xx naming the problem, never a crash.
func FuzzIngest(f *testing.F) {
	_, base := quietNode(f)
	f.Add(goodEvent, "", "")
	f.Add("["+goodEvent+","+goodEvent+"]", "p", "1")
	f.Add(goodEvent+"\n"+goodEvent, "p", "2")
	f.Add(`{"symbol":"a","symbol":"b","price":1,"quantity":1,"timestamp":1}`, "", "")
	f.Add(`{"symbol":"x","price":1e400,"quantity":9223372036854775808,"timestamp":-9223372036854775808}`, "", "")
	f.Add(`[{"symbol":"\u0000","price":null,"quantity":1,"timestamp":"1"}]`, "q", "18446744073709551615")
	f.Fuzz(func(t *testing.T, body, producer, seq string) {
		if strings.IndexFunc(producer+seq, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			return // not a header value a client can send
		}
		headers := []string{}
		if producer != "" || seq != "" {
			headers = append(headers, "Producer-Id", producer, "Producer-Seq", seq)
		}
		r := do(t, http.MethodPost, base+"/v1/streams/TradeStream/events", body, headers...)
		checkAnswer(t, "ingest", r)
		if r.code == http.StatusOK {
			var ack IngestResponse
			if err := json.Unmarshal([]byte(r.body), &ack); err != nil || ack.Index == 0 {
				t.Fatalf("200 without an index: %s", r.body)
			}
		}
	})
}

// FuzzStoreQuery posts arbitrary store queries: a bad query is a 400 with Siddhi's error
// body, never a 500 or a crash.
func FuzzStoreQuery(f *testing.F) {
	_, base := quietNode(f)
	if r := do(f, http.MethodPost, base+"/v1/streams/TradeStream/events", goodEvent); r.code != 200 {
		f.Fatal(r.body)
	}
	for _, q := range []string{
		`from TradeAggregation within 0L, 9999999999999L per "years" select symbol, total`,
		`from TradeAggregation on symbol == "wso2" within "2018-01-** **:**:**" per 'hours' select avg(avgPrice) as a group by symbol having a > 1 order by a desc limit 3`,
		`from TradeAggregation within 0L, 1L per 'weeks'`,
		`from TradeAggregation within 0L, 1L per 'hours' select total / 0, -total % 0L`,
		`from TradeAggregation within 1L, 0L per "days" select *`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		body, _ := json.Marshal(storeQueryRequest{AppName: "TradeApp", Query: q})
		r := do(t, http.MethodPost, base+"/stores/query", string(body))
		checkAnswer(t, "store query", r)
		if r.code >= 400 && !strings.Contains(r.body, `"type":"error"`) {
			t.Fatalf("store query error without Siddhi's body: %d %s", r.code, r.body)
		}
	})
}

// forwardedBatch encodes requests (undecoded) and parts in the internal forwarded-batch
// format.
func forwardedBatch(bodies []string, parts []fsm.Part) []byte {
	var batch []*fwdEntry
	for i, b := range bodies {
		batch = append(batch, &fwdEntry{raw: &rawRequest{stream: "TradeStream", producerID: "p", seq: 7, body: []byte(b)}, split: i%2 == 1})
	}
	for i := range parts {
		batch = append(batch, &fwdEntry{part: &parts[i]})
	}
	data, err := encodeForwarded(batch)
	if err != nil {
		panic(err)
	}
	return data
}

// FuzzInternalIngest posts arbitrary bytes as a forwarded batch (POST /v1/internal/ingest):
// a malformed batch is refused whole with 400, a well-formed one answers per entry.
func FuzzInternalIngest(f *testing.F) {
	_, base := quietNode(f)
	part := fsm.Part{Stream: "TradeStream", ProducerID: "q", Seq: 3,
		Events: []expr.Row{{expr.String("a"), expr.Double(1), expr.Long(2), expr.Long(1514783400000)}}}
	f.Add(forwardedBatch([]string{goodEvent}, nil))
	f.Add(forwardedBatch([]string{goodEvent, "[nope"}, []fsm.Part{part}))
	f.Add(forwardedBatch(nil, []fsm.Part{{Stream: "Nope"}, part}))
	f.Add([]byte{1, 2})
	u := base + "/v1/internal/ingest?" + url.Values{"group": {"0"}}.Encode()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := do(t, http.MethodPost, u, string(data), "Content-Type", "application/octet-stream")
		if r.code == http.StatusOK {
			rd := wire.NewReader([]byte(r.body))
			n := rd.Count(2)
			res, err := decodeResults([]byte(r.body), n)
			if err != nil {
				t.Fatalf("malformed batch answer: %v", err)
			}
			for _, rs := range res {
				for _, p := range rs {
					if s := p.code.status(); s >= 500 && s != 503 {
						t.Fatalf("an entry of the batch answered %d: %s", s, p.msg)
					}
				}
			}
			return
		}
		checkAnswer(t, "forwarded batch", r)
	})
}
