package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/replay/*.golden")

func tally(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestReplayGolden runs `tally replay` over the files in testdata/replay and compares the
// output with the golden files.
func TestReplayGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "replay")
	app := filepath.Join(dir, "trades.siddhi")
	cases := []struct {
		golden string
		args   []string
	}{
		// The WSO2 active-active example: two shards, one hour, 30 + 40 = 70.
		{"seed_hours.golden", []string{"--events", filepath.Join(dir, "trades.ndjson"),
			"--query", `from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice`}},
		{"seed_seconds_details.golden", []string{"--events", filepath.Join(dir, "trades.ndjson"), "--details",
			"--query", `from TradeAggregation within "2018-01-01 **:**:**" per "seconds" select * order by AGG_TIMESTAMP`}},
		{"seed_days_kolkata.golden", []string{"--events", filepath.Join(dir, "trades.ndjson"), "--agg-time-zone", "Asia/Kolkata",
			"--query", `from TradeAggregation within 0L, 9999999999999L per "days" select AGG_TIMESTAMP, symbol, total`}},
		// Without --query: every output event of the alert query, as NDJSON.
		{"alerts.golden", []string{"--events", filepath.Join(dir, "alerts.ndjson")}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			code, out, errOut := tally(t, append([]string{"replay", "--app", app}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden := filepath.Join(dir, c.golden)
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (run with -update and review the diff)\n got: %s\nwant: %s", golden, out, want)
			}
		})
	}
}

func TestReplaySeedExample(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "replay")
	code, out, errOut := tally(t, "replay", "--app", filepath.Join(dir, "trades.siddhi"), "--events", filepath.Join(dir, "trades.ndjson"),
		"--query", `from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice`)
	if code != 0 || out != `{"records":[[1514782800000,"wso2",70,100.0]]}`+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	app := filepath.Join("..", "..", "testdata", "replay", "trades.siddhi")
	good := `{"stream":"TradeStream","ts":5,"data":{"symbol":"a","price":1.0,"quantity":1,"timestamp":5}}` + "\n"
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no flags", []string{"replay"}, 2, "--app and --events are required"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"missing app file", []string{"replay", "--app", filepath.Join(dir, "nope"), "--events", write("e1", good)}, 1, "read app"},
		{"invalid app", []string{"replay", "--app", write("bad.siddhi", "@app:name('X')\ndefine stream S (a int)\nfrom S select a insert into;"), "--events", write("e2", good)}, 1, "bad.siddhi: siddhiql: 3:"},
		{"bad query", []string{"replay", "--app", app, "--events", write("e3", good), "--query", "from TradeAggregation select *"}, 1, "query:"},
		{"malformed line", []string{"replay", "--app", app, "--events", write("e4", good+"{not json\n")}, 1, "e4:2:"},
		{"wrong type", []string{"replay", "--app", app, "--events", write("e5", `{"stream":"TradeStream","ts":5,"data":{"symbol":"a","price":"x","quantity":1,"timestamp":5}}`)}, 1, `e5:1: stream TradeStream: attribute "price": want a number (double), got a string`},
		{"unknown stream", []string{"replay", "--app", app, "--events", write("e6", `{"stream":"Nope","ts":5,"data":{}}`)}, 1, `e6:1: unknown stream "Nope"`},
		{"time goes back", []string{"replay", "--app", app, "--events", write("e7", good+strings.Replace(good, `"ts":5`, `"ts":4`, 1))}, 1, "e7:2: ts 4 goes back in time"},
		{"missing ts", []string{"replay", "--app", app, "--events", write("e8", `{"stream":"TradeStream","data":{}}`)}, 1, `e8:1: missing "ts"`},
		{"unknown field", []string{"replay", "--app", app, "--events", write("e9", `{"stream":"TradeStream","ts":1,"dta":{}}`)}, 1, `e9:1: json: unknown field "dta"`},
		{"bad zone", []string{"replay", "--app", app, "--events", write("e10", good), "--agg-time-zone", "Mars/Base"}, 1, "Mars/Base"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := tally(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.code, c.msg)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing on error", out)
			}
		})
	}
}
