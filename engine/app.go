package engine

import (
	"fmt"
	"slices"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/engine/window"
	"github.com/tally-db/tally/siddhiql"
)

// App is a deployed app: its text, its streams, aggregations and queries, and their state.
type App struct {
	Name   string
	Text   string
	Parsed *siddhiql.App

	streams map[string]*stream
	// streamOrder lists the streams defined with `define stream`, in text order: the
	// streams the app takes events on.
	streamOrder []string
	aggs        map[string]*agg.State
	aggOrder    []string
	queries     []*query

	// Triggers, inMemory links and partitions (trigger.go, inmemory.go, partition.go).
	triggers   []*trigger   // in definition order
	sources    []link       // inMemory @source links, in definition order
	bus        *bus         // the engine's inMemory topics; nil until deployed
	partitions []*partition // in text order
	// env is what the app's functions read besides the row (stamped time, GeoIP).
	env *expr.Env
	// Notes are remarks for the operator about how the app runs (an @source whose events
	// come through the ingest API, say); deploy reports them.
	Notes      []string
	tables     map[string]*table.Table // tables.go
	tableOrder []string
	// Aggregation joins (aggjoin.go, aggjoin_readonly.go): read-only aggregations by name, and
	// the aggregation inputs of the app's joins in query order.
	readOnly map[string]*agg.Def
	aggJoins []*aggSide
	// storeTables are the @store(type='rdbms') tables, in text order (tablestore.go).
	storeTables []*table.Table
}

// stream is a stream of the app with everything that reads it.
type stream struct {
	def     *siddhiql.StreamDef
	aggs    []*agg.State
	queries []*query
	sinks   []Sink // the stream's @sink annotations, in order

	topics     []link       // the stream's inMemory @sink links, in order
	partitions []*partition // partitions whose queries read the stream
}

type query struct {
	def     *siddhiql.Query
	rt      *window.Query
	attrs   []siddhiql.Attribute
	join    *joinQuery   // join.go; rt is then its selector
	toTable *tableOut    // tables.go; set when the query writes a table
	fn      *markovChain // markov.go; the query's stream function, nil when none
}

// Aggregations lists the app's aggregation definitions in text order.
func (a *App) Aggregations() []*agg.Def {
	out := make([]*agg.Def, 0, len(a.aggOrder))
	for _, n := range a.aggOrder {
		out = append(out, a.aggs[n].Def())
	}
	return out
}

// Aggregation returns the state of one aggregation.
func (a *App) Aggregation(name string) (*agg.State, bool) {
	s, ok := a.aggs[name]
	return s, ok
}

func compileApp(p *siddhiql.App, text string, clock *agg.Clock) (*App, error) {
	a := &App{Name: p.Name, Text: text, Parsed: p, streams: map[string]*stream{}, aggs: map[string]*agg.State{}, env: &expr.Env{App: p.Name}}
	for _, sd := range p.Streams {
		if _, dup := a.streams[sd.Name]; dup {
			return nil, &siddhiql.Error{Pos: sd.Pos, Msg: fmt.Sprintf("stream %s is defined twice", sd.Name)}
		}
		a.streams[sd.Name] = &stream{def: sd}
		a.streamOrder = append(a.streamOrder, sd.Name)
	}
	if err := a.compileTriggers(p); err != nil {
		return nil, err
	}
	for _, ad := range p.Aggregations {
		if _, dup := a.aggs[ad.Name]; dup || a.streams[ad.Name] != nil || a.readOnly[ad.Name] != nil {
			return nil, &siddhiql.Error{Pos: ad.Pos, Msg: fmt.Sprintf("%s is defined twice", ad.Name)}
		}
		in, ok := a.streams[ad.From]
		if !ok {
			return nil, &siddhiql.Error{Pos: ad.Pos, Msg: fmt.Sprintf("aggregation %s reads stream %s, which is not defined", ad.Name, ad.From)}
		}
		if ad.ReadOnly { // aggjoin_readonly.go
			if err := a.addReadOnly(ad, in.def); err != nil {
				return nil, err
			}
			continue
		}
		def, err := agg.CompileEnv(ad, in.def, a.env)
		if err != nil {
			return nil, err
		}
		st := agg.NewState(def, clock)
		a.aggs[ad.Name] = st
		a.aggOrder = append(a.aggOrder, ad.Name)
		in.aggs = append(in.aggs, st)
	}
	if err := a.compileTables(p); err != nil {
		return nil, err
	}
	for i, qd := range p.Queries {
		if err := a.compilePartitionsAt(p, i); err != nil {
			return nil, err
		}
		if qd.Join != nil {
			if qd.StreamFunc != nil {
				return nil, &siddhiql.Error{Pos: qd.StreamFunc.Pos, Msg: fmt.Sprintf("stream function #%s on a join input is not supported", qd.StreamFunc.Name)}
			}
			if err := a.compileJoin(qd); err != nil {
				return nil, err
			}
			continue
		}
		in, ok := a.streams[qd.From]
		if _, isTable := a.tables[qd.From]; isTable {
			return nil, &siddhiql.Error{Pos: qd.Pos, Msg: fmt.Sprintf("query reads table %s: a table is read in a join, with 'in', or by a store query", qd.From)}
		}
		if !ok {
			return nil, &siddhiql.Error{Pos: qd.Pos, Msg: fmt.Sprintf("query reads stream %s, which is neither defined nor the output of an earlier query", qd.From)}
		}
		fn, rqd, rdef, err := a.compileFunc(qd, in.def) // markov.go
		if err != nil {
			return nil, err
		}
		rt, err := window.CompileWithEnv(rqd, rdef, a, a.env)
		if err != nil {
			return nil, err
		}
		q := &query{def: qd, rt: rt, attrs: rt.OutputAttrs(), fn: fn}
		if err := a.connectOutput(q); err != nil {
			return nil, err
		}
		in.queries = append(in.queries, q)
		a.queries = append(a.queries, q)
	}
	if err := a.compilePartitionsAt(p, len(p.Queries)); err != nil {
		return nil, err
	}
	if err := a.checkCycles(); err != nil {
		return nil, err
	}
	if err := a.compileSinks(); err != nil {
		return nil, err
	}
	if err := a.compileLinks(); err != nil {
		return nil, err
	}
	a.Notes = siddhiql.Notes(p)
	return a, nil
}

// connectOutput checks a query's output against its target stream, or defines the target
// from the query's output when no definition exists.
func (a *App) connectOutput(q *query) error {
	if t, ok := a.tables[q.def.Into]; ok {
		return a.connectTable(q, t)
	}
	if q.def.TableOp != nil {
		return &siddhiql.Error{Pos: q.def.TableOp.Pos, Msg: fmt.Sprintf("%s %s: %s is not a table of this app", q.def.TableOp.Action, q.def.Into, q.def.Into)}
	}
	out, ok := a.streams[q.def.Into]
	if !ok {
		if _, isAgg := a.aggs[q.def.Into]; isAgg {
			return &siddhiql.Error{Pos: q.def.Pos, Msg: fmt.Sprintf("cannot insert into aggregation %s", q.def.Into)}
		}
		a.streams[q.def.Into] = &stream{def: &siddhiql.StreamDef{Pos: q.def.Pos, Name: q.def.Into, Attributes: q.attrs}}
		return nil
	}
	want := out.def.Attributes
	if len(want) != len(q.attrs) {
		return &siddhiql.Error{Pos: q.def.Pos, Msg: fmt.Sprintf("query outputs %d attributes but stream %s has %d", len(q.attrs), q.def.Into, len(want))}
	}
	for i, w := range want {
		if got := q.attrs[i]; got.Type != w.Type {
			return &siddhiql.Error{Pos: q.def.Pos, Msg: fmt.Sprintf("query output %d (%s) is %s but attribute %s of stream %s is %s", i+1, got.Name, got.Type, w.Name, q.def.Into, w.Type)}
		}
	}
	q.attrs = want
	return nil
}

// checkCycles rejects apps whose queries feed each other in a loop, except a join that
// inserts into one of its own inputs (join.go).
func (a *App) checkCycles() error {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(s string, by siddhiql.Pos) error
	visit = func(s string, by siddhiql.Pos) error {
		switch state[s] {
		case 1:
			return &siddhiql.Error{Pos: by, Msg: fmt.Sprintf("app %s: queries feed stream %s back into itself", a.Name, s)}
		case 2:
			return nil
		}
		state[s] = 1
		if a.streams[s] == nil { // a table
			state[s] = 2
			return nil
		}
		for _, e := range a.edges(s) {
			if err := visit(e.into, e.pos); err != nil {
				return err
			}
		}
		state[s] = 2
		return nil
	}
	for _, s := range a.sortedStreams() {
		if err := visit(s, siddhiql.Pos{}); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) sortedStreams() []string {
	names := make([]string, 0, len(a.streams))
	for n := range a.streams {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *stream) check(events []expr.Row) error {
	attrs := s.def.Attributes
	for i, ev := range events {
		if len(ev) != len(attrs) {
			return fmt.Errorf("%w: event %d of stream %s has %d values, want %d", ErrBadEvent, i, s.def.Name, len(ev), len(attrs))
		}
		for j, v := range ev {
			if !v.IsNull() && v.T != attrs[j].Type {
				return fmt.Errorf("%w: event %d of stream %s: attribute %s is %s, want %s", ErrBadEvent, i, s.def.Name, attrs[j].Name, v.T, attrs[j].Type)
			}
		}
	}
	for _, st := range s.aggs {
		if err := st.Check(events); err != nil {
			return fmt.Errorf("%w: %w", ErrBadEvent, err)
		}
	}
	return nil
}

// maxDepth bounds query chains; checkCycles makes deeper chains impossible in practice.
const maxDepth = 64

// feed delivers events to everything that reads stream, appending query outputs to out and
// feeding them on to the streams they are inserted into.
func (a *App) feed(index uint64, now int64, name string, events []expr.Row, out *[]Output, depth int) {
	s := a.streams[name]
	a.env.Enter(index, now)
	for _, st := range s.aggs {
		// check ran before: Add cannot fail here.
		if err := st.Add(index, now, events); err != nil {
			panic(fmt.Sprintf("engine: aggregation %s failed after its check passed: %v", st.Def().Name, err))
		}
	}
	for _, q := range s.queries {
		a.run(index, now, q, func(emit func(window.Output)) { q.process(name, now, events, emit) }, out, depth)
	}
	for _, p := range s.partitions {
		p.feed(a, index, now, name, events, out, depth)
	}
	if len(s.topics) > 0 {
		a.bus.publish(index, now, s.def.Attributes, s.topics, events, out, depth)
	}
}

// run collects one query's outputs and passes them downstream.
func (a *App) run(index uint64, now int64, q *query, step func(func(window.Output)), out *[]Output, depth int) {
	if q.toTable != nil {
		step(func(o window.Output) { q.toTable.apply(o.Row) })
		return
	}
	var rows []expr.Row
	step(func(o window.Output) {
		*out = append(*out, Output{App: a.Name, Stream: q.def.Into, Seq: len(*out), Expired: o.Kind == window.Expired,
			Time: o.Time, Attrs: q.attrs, Row: o.Row})
		rows = append(rows, o.Row)
	})
	if len(rows) > 0 && depth < maxDepth {
		a.feed(index, now, q.def.Into, rows, out, depth+1)
	}
}

func (a *App) tick(index uint64, now int64, out *[]Output) {
	a.env.Enter(index, now)
	a.fireTriggers(index, now, out)
	for _, n := range a.aggOrder {
		a.aggs[n].Advance(now)
	}
	for _, q := range a.queries {
		a.run(index, now, q, func(emit func(window.Output)) { q.advance(now, emit) }, out, 0)
	}
	for _, p := range a.partitions {
		p.tick(a, index, now, out)
	}
}
