package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
)

const replayUsage = `usage: tally replay --app APP.siddhi --events EVENTS.ndjson [--query 'from ...'] [flags]

Feeds recorded events through a SiddhiQL app, offline, exactly as a Tally group applies them.
--app may be repeated: the apps are deployed in order, linked by their inMemory topics, and
--query reads the first.

Each line of EVENTS is one JSON object:
  {"stream":"TradeStream","ts":1514783400000,"data":{"symbol":"wso2","price":100.0,...}}
"ts" is the arrival time in epoch ms (the time a leader stamps); lines must not go back in
time. An optional "shard":"NAME" sends the line to that shard's own engine, so a query can
merge several shards as an active-active cluster does. A line with only "ts" advances time
(closing buckets and expiring windows) without an event.

With --query, prints the answer as Siddhi's store API does: {"records":[[...],...]}.
Without it, prints every output event of the app's queries as NDJSON:
  {"stream":"Alerts","ts":1514783400000,"data":{...}}   ("expired":true for expired events)

flags:
`

type replayLine struct {
	Stream string          `json:"stream"`
	TS     *int64          `json:"ts"`
	Data   json.RawMessage `json:"data"`
	Shard  string          `json:"shard"`
}

func replayMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, replayUsage); fs.PrintDefaults() }
	var appPaths []string
	fs.Func("app", "SiddhiQL app file (required; repeat it to deploy several apps, linked by inMemory topics)", func(v string) error {
		appPaths = append(appPaths, v)
		return nil
	})
	eventsPath := fs.String("events", "", "NDJSON events file, or - for standard input (required)")
	query := fs.String("query", "", "store query to answer after the events, e.g. 'from Agg within 0L, 9999999999999L per \"hours\" select *'")
	zone := fs.String("agg-time-zone", "GMT", "aggTimeZone: IANA zone in which hour/day/month/year buckets start")
	details := fs.Bool("details", false, "with --query, add the column names and types as \"details\"")
	geoDB := fs.String("geoip-db", "", "MaxMind-format GeoIP City database for geo:findCountryFromIP/findCityFromIP (default: none, they answer \"\")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(appPaths) == 0 || *eventsPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "tally replay: --app and --events are required and no other arguments are taken")
		fs.Usage()
		return 2
	}
	if err := replay(ctx, replayConfig{apps: appPaths, events: *eventsPath, query: *query, zone: *zone, details: *details, geoDB: *geoDB}, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "tally replay: %v\n", err)
		return 1
	}
	return 0
}

type replayConfig struct {
	apps                []string // deployed in this order; a query reads the first
	events, query, zone string
	details             bool
	geoDB               string // --geoip-db; empty for none
}

func replay(ctx context.Context, cfg replayConfig, stdin io.Reader, stdout io.Writer) error {
	texts := make([][]byte, len(cfg.apps))
	for i, p := range cfg.apps {
		var err error
		if texts[i], err = os.ReadFile(p); err != nil {
			return fmt.Errorf("read app: %w", err)
		}
	}
	in := stdin
	if cfg.events != "-" {
		f, err := os.Open(cfg.events)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		defer f.Close()
		in = f
	}
	var appName string // the first app's: the one a query reads
	geo, closeGeo, err := openGeoIP(cfg.geoDB, nil)
	if err != nil {
		return err
	}
	defer closeGeo()
	newShard := func() (*engine.Engine, error) {
		e, err := engine.New(engine.Config{AggTimeZone: cfg.zone, GeoIP: geo})
		if err != nil {
			return nil, err
		}
		for i, text := range texts {
			a, err := e.Deploy(string(text))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cfg.apps[i], err)
			}
			if i == 0 {
				appName = a.Name
			}
		}
		return e, nil
	}
	first, err := newShard()
	if err != nil {
		return err
	}
	if cfg.query != "" {
		// Check the query before reading any event: a typo should not wait for a big file.
		if first.IsTableQuery(appName, cfg.query) {
			if _, err := first.TableQuery(appName, cfg.query); err != nil {
				return fmt.Errorf("query: %w", err)
			}
		} else if _, err := first.Plan(appName, cfg.query); err != nil {
			return fmt.Errorf("query: %w", err)
		}
	}
	shards := map[string]*engine.Engine{"": first}
	out := bufio.NewWriter(stdout)
	defer out.Flush()

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var last int64
	var buf []byte
	for n := 1; sc.Scan(); n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l replayLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return fmt.Errorf("%s:%d: %w", cfg.events, n, err)
		}
		if l.TS == nil {
			return fmt.Errorf("%s:%d: missing \"ts\" (arrival time, epoch ms)", cfg.events, n)
		}
		if *l.TS < agg.MinTime || *l.TS > agg.MaxTime {
			return fmt.Errorf("%s:%d: ts %d is outside years 0001 to 9999", cfg.events, n, *l.TS)
		}
		if *l.TS < last {
			return fmt.Errorf("%s:%d: ts %d goes back in time (previous line: %d)", cfg.events, n, *l.TS, last)
		}
		last = *l.TS
		e := shards[l.Shard]
		if e == nil {
			if e, err = newShard(); err != nil {
				return err
			}
			shards[l.Shard] = e
		}
		var outs []engine.Output
		if l.Stream == "" {
			if l.Data != nil {
				return fmt.Errorf("%s:%d: \"data\" without \"stream\"", cfg.events, n)
			}
			outs = e.Tick(uint64(n), *l.TS)
		} else {
			def, ok := e.Stream(l.Stream)
			if !ok {
				return fmt.Errorf("%s:%d: unknown stream %q", cfg.events, n, l.Stream)
			}
			row, err := expr.DecodeJSON(def.Attributes, l.Data)
			if err != nil {
				return fmt.Errorf("%s:%d: stream %s: %w", cfg.events, n, l.Stream, err)
			}
			if err := e.CheckLimits(l.Stream, []expr.Row{row}, 0); err != nil {
				return fmt.Errorf("%s:%d: %w", cfg.events, n, err)
			}
			if outs, err = e.Apply(uint64(n), *l.TS, l.Stream, []expr.Row{row}); err != nil {
				return fmt.Errorf("%s:%d: %w", cfg.events, n, err)
			}
		}
		if cfg.query == "" {
			for _, o := range outs {
				buf = appendOutput(buf[:0], o, l.Shard)
				out.Write(buf)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	if cfg.query == "" {
		return nil
	}
	var res *agg.Result
	if first.IsTableQuery(appName, cfg.query) {
		res, err = first.TableQuery(appName, cfg.query) // tables are not merged across shards
	} else {
		res, err = queryShards(shards, appName, cfg.query)
	}
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	out.Write(res.AppendJSON(nil, cfg.details))
	out.WriteByte('\n')
	return nil
}

// queryShards answers a store query over the rows of every shard, merged as the shared store
// would merge them.
func queryShards(shards map[string]*engine.Engine, app, query string) (*agg.Result, error) {
	names := slices.Sorted(maps.Keys(shards))
	plan, err := shards[names[0]].Plan(app, query)
	if err != nil {
		return nil, err
	}
	var sources [][]*agg.Row
	for _, n := range names {
		sources = append(sources, shards[n].Rows(app, plan))
	}
	return plan.Run(sources...)
}

func appendOutput(b []byte, o engine.Output, shard string) []byte {
	b = append(b, `{"stream":`...)
	b = expr.String(o.Stream).AppendJSON(b)
	b = append(b, `,"ts":`...)
	b = expr.Long(o.Time).AppendJSON(b)
	if shard != "" {
		b = append(b, `,"shard":`...)
		b = expr.String(shard).AppendJSON(b)
	}
	if o.Expired {
		b = append(b, `,"expired":true`...)
	}
	b = append(b, `,"data":`...)
	b = expr.AppendJSONObject(b, o.Attrs, o.Row)
	return append(b, "}\n"...)
}
