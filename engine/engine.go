// Package engine is Tally's pure, deterministic stream processor. It turns SiddhiQL apps and
// a sequence of timestamped event batches into incremental aggregates (sec … year), window
// query outputs and store query answers.
//
// The engine knows nothing of Raft, HTTP or SQL. Its only clock is the stamped time passed
// to Apply and Tick; it uses no randomness, and no map iteration order reaches its outputs or
// its encoded state. Two engines fed the same calls hold byte-identical encodings, and an
// engine restored from an encoding continues exactly as the original would have. An Engine is
// not safe for concurrent use: its owner (the FSM) serializes calls.
package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// Errors returned by the engine; test with errors.Is.
var (
	ErrUnknownStream = errors.New("engine: unknown stream")
	ErrUnknownApp    = errors.New("engine: unknown app")
	ErrUnknownAgg    = errors.New("engine: unknown aggregation")
	ErrBadEvent      = errors.New("engine: bad event")
	ErrConflict      = errors.New("engine: app conflicts with a deployed app")
)

// Config configures an Engine.
type Config struct {
	// AggTimeZone is Siddhi's aggTimeZone: the IANA zone in which hour, day, month and
	// year buckets start. Empty means GMT.
	AggTimeZone string
	// GeoIP is the node's GeoIP database for geo:findCountryFromIP and geo:findCityFromIP;
	// nil answers "". Every node must have the same one (see expr.GeoIP).
	GeoIP expr.GeoIP
}

// Validate checks the configuration.
func (c Config) Validate() error {
	_, err := agg.NewClock(c.AggTimeZone)
	return err
}

// Engine runs deployed apps. See the package doc for its guarantees.
type Engine struct {
	clock *agg.Clock
	geo   expr.GeoIP
	now   int64
	apps  map[string]*App
	// inputs maps the name of a plain input stream to the app that defines it (scope.go).
	inputs map[string]*App
	bus    *bus // inMemory topics between the apps (inmemory.go)
	// restoring skips checkTables: a state written before that check existed restores as
	// it was.
	restoring bool
}

// New returns an empty engine.
func New(cfg Config) (*Engine, error) {
	clock, err := agg.NewClock(cfg.AggTimeZone)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return &Engine{clock: clock, geo: cfg.GeoIP, apps: map[string]*App{}, inputs: map[string]*App{}}, nil
}

// Now is the latest stamped time the engine has seen.
func (e *Engine) Now() int64 { return e.now }

// TimeZone is the aggregation time zone's name.
func (e *Engine) TimeZone() string { return e.clock.Zone() }

// Deploy parses, checks and installs an app. An app of the same name is replaced and its
// state dropped, unless its text is identical: then nothing changes, so a retried deploy is
// harmless. Stream names are scoped per app (scope.go), but a plain input stream's bare name
// is global: one defined by another app makes the deploy fail with ErrConflict. On error
// nothing changes.
func (e *Engine) Deploy(text string) (*App, error) {
	a, err := e.CheckDeploy(text)
	if err != nil {
		return nil, err
	}
	if old, ok := e.apps[a.Name]; ok && old.Text == text {
		return old, nil
	}
	e.Undeploy(a.Name)
	e.apps[a.Name] = a
	for _, s := range a.plainInputs() {
		e.inputs[s] = a
	}
	e.rebuildBus()
	return a, nil
}

// CheckDeploy returns the error Deploy would return, changing nothing. The *App it returns
// on success is a fresh compilation, not installed.
func (e *Engine) CheckDeploy(text string) (*App, error) {
	parsed, err := siddhiql.Parse(text)
	if err != nil {
		return nil, err
	}
	if parsed.Name == "" {
		return nil, &siddhiql.Error{Pos: siddhiql.Pos{Line: 1, Col: 1}, Msg: "the app needs a name: start it with @app:name('MyApp')"}
	}
	a, err := compileApp(parsed, text, e.clock)
	if err != nil {
		return nil, err
	}
	a.env.GeoIP = e.geo
	for _, s := range a.plainInputs() {
		if other, ok := e.inputs[s]; ok && other.Name != a.Name {
			return nil, fmt.Errorf("%w: stream %s is already defined by app %s", ErrConflict, s, other.Name)
		}
	}
	if err := e.checkLinks(a); err != nil {
		return nil, err
	}
	if !e.restoring {
		if err := e.checkTables(a); err != nil {
			return nil, err
		}
		if err := e.checkSinkNames(a); err != nil { // scope.go
			return nil, err
		}
		if err := e.checkReadOnly(a); err != nil { // aggjoin_readonly.go
			return nil, err
		}
	}
	return a, nil
}

// Undeploy removes an app and its state. It reports whether the app existed.
func (e *Engine) Undeploy(name string) bool {
	a, ok := e.apps[name]
	if !ok {
		return false
	}
	for _, s := range a.plainInputs() {
		if e.inputs[s] == a {
			delete(e.inputs, s)
		}
	}
	delete(e.apps, name)
	e.rebuildBus()
	return true
}

// Apps lists the deployed apps by name.
func (e *Engine) Apps() []*App {
	out := make([]*App, 0, len(e.apps))
	for _, k := range slices.Sorted(maps.Keys(e.apps)) {
		out = append(out, e.apps[k])
	}
	return out
}

// App returns a deployed app by name.
func (e *Engine) App(name string) (*App, bool) {
	a, ok := e.apps[name]
	return a, ok
}

// Stream returns the definition of a stream that events can be sent to, by a bare or an
// App.Stream name (scope.go).
func (e *Engine) Stream(name string) (*siddhiql.StreamDef, bool) {
	a, local, _ := e.resolve(name)
	if a == nil {
		return nil, false
	}
	return a.streams[local].def, true
}

// Output is one event a query emitted into its output stream.
type Output struct {
	App    string
	Stream string
	// Seq numbers the outputs of one Apply or Tick call from 0; with the log index it
	// makes the output's stable ID.
	Seq     int
	Expired bool
	Time    int64
	Attrs   []siddhiql.Attribute
	Row     expr.Row
}

// CheckEvents validates events for stream without applying them: the row width and types,
// for event-time aggregations the event time, and the length of strings that aggregation
// tables store (checked here only, at ingest, not by Apply). The error wraps ErrBadEvent or
// ErrUnknownStream and names the event by its position.
func (e *Engine) CheckEvents(stream string, events []expr.Row) error {
	if err := e.checkApply(stream, events); err != nil {
		return err
	}
	a, local, _ := e.resolve(stream)
	return a.streams[local].checkLengths(events)
}

// checkApply is the check Apply makes: everything CheckEvents checks but string lengths.
func (e *Engine) checkApply(stream string, events []expr.Row) error {
	a, local, err := e.lookup(stream)
	if err != nil {
		return err
	}
	return a.streams[local].check(events)
}

// Apply feeds events that arrived together at stamped time now to stream, as log entry
// index, and returns the outputs of the queries they reach. now never moves the engine's
// clock back: an older stamp is treated as the current time. A bad batch changes nothing.
func (e *Engine) Apply(index uint64, now int64, stream string, events []expr.Row) ([]Output, error) {
	if err := e.checkApply(stream, events); err != nil {
		return nil, err
	}
	now = e.advance(now)
	e.stampTables(index)
	var out []Output
	e.fireTriggers(index, now, &out)
	a, local, _ := e.resolve(stream)
	a.feed(index, now, local, events, &out, 0)
	return out, nil
}

// Tick advances the engine's clock to now with no events: time windows expire, batches and
// arrival buckets close. It returns the outputs that causes.
func (e *Engine) Tick(index uint64, now int64) []Output {
	now = e.advance(now)
	e.stampTables(index)
	var out []Output
	for _, a := range e.Apps() {
		a.tick(index, now, &out)
	}
	return out
}

func (e *Engine) advance(now int64) int64 {
	if now > e.now {
		e.now = now
	}
	return e.now
}

// DropFlushed drops, in every aggregation, the closed rows last changed at or before index
// (they are safely in the shared store), and forgets the store tables' changes made at or
// before it. It returns how many aggregation rows it dropped.
func (e *Engine) DropFlushed(index uint64) int {
	n := 0
	for _, a := range e.Apps() {
		for _, s := range a.aggOrder {
			n += a.aggs[s].DropFlushed(index)
		}
		a.clearTableChanges(index)
	}
	return n
}

// Plan parses a store query against an aggregation of app and resolves its bounds.
func (e *Engine) Plan(app, query string) (*agg.Plan, error) {
	a, ok := e.apps[app]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownApp, app)
	}
	q, err := siddhiql.ParseStoreQuery(query)
	if err != nil {
		return nil, err
	}
	st, ok := a.aggs[q.From]
	if !ok {
		return nil, &siddhiql.Error{Pos: q.Pos, Msg: fmt.Sprintf("app %s has no aggregation %s", app, q.From)}
	}
	return agg.Prepare(st.Def(), q)
}

// Rows returns the in-memory rows a plan reads from this engine: those of its table whose
// bucket is in the plan's window (the rest Plan.Run would skip anyway, and building them
// costs a Row each).
func (e *Engine) Rows(app string, p *agg.Plan) []*agg.Row {
	a, ok := e.apps[app]
	if !ok {
		return nil
	}
	st, ok := a.aggs[p.Def.Name]
	if !ok {
		return nil
	}
	return st.RowsIn(p.Per, p.Start, p.End)
}

// Query answers a store query from this engine's memory alone.
func (e *Engine) Query(app, query string) (*agg.Result, error) {
	p, err := e.Plan(app, query)
	if err != nil {
		return nil, err
	}
	return p.Run(e.Rows(app, p))
}
