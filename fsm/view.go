package fsm

import (
	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/siddhiql"
)

// View is the read-only face of a group's engine that queries, table queries, flush
// capture and checks see (FSM.Read). It exposes only the engine's read methods, so no
// reader can apply, tick, deploy or drop rows. A View is valid only during the Read call
// that handed it out; rows and definitions it returns must be copied to be kept and never
// modified.
type View struct{ e *engine.Engine }

// ViewOf returns a read-only view of an engine the caller owns (a stand-in replica, a
// test); an FSM's own engine is only ever seen through Read.
func ViewOf(e *engine.Engine) View { return View{e} }

// Stream is engine.Engine.Stream.
func (v View) Stream(name string) (*siddhiql.StreamDef, bool) { return v.e.Stream(name) }

// IsOutputStream is engine.Engine.IsOutputStream.
func (v View) IsOutputStream(stream string) bool { return v.e.IsOutputStream(stream) }

// TimeZone is engine.Engine.TimeZone.
func (v View) TimeZone() string { return v.e.TimeZone() }

// Apps lists the deployed apps by name.
func (v View) Apps() []AppView {
	apps := v.e.Apps()
	out := make([]AppView, len(apps))
	for i, a := range apps {
		out[i] = AppView{a}
	}
	return out
}

// App returns a deployed app by name.
func (v View) App(name string) (AppView, bool) {
	a, ok := v.e.App(name)
	return AppView{a}, ok
}

// Plan is engine.Engine.Plan.
func (v View) Plan(app, query string) (*agg.Plan, error) { return v.e.Plan(app, query) }

// Rows is engine.Engine.Rows: the engine's own rows, to be cloned before the Read returns.
func (v View) Rows(app string, p *agg.Plan) []*agg.Row { return v.e.Rows(app, p) }

// Query is engine.Engine.Query.
func (v View) Query(app, query string) (*agg.Result, error) { return v.e.Query(app, query) }

// IsTableQuery is engine.Engine.IsTableQuery.
func (v View) IsTableQuery(app, query string) bool { return v.e.IsTableQuery(app, query) }

// TableQuery is engine.Engine.TableQuery.
func (v View) TableQuery(app, query string) (*agg.Result, error) { return v.e.TableQuery(app, query) }

// CheckTableWrite is engine.Engine.CheckTableWrite.
func (v View) CheckTableWrite(app, query string) error { return v.e.CheckTableWrite(app, query) }

// CheckDeploy is engine.Engine.CheckDeploy: the app it returns is compiled anew, not the
// engine's.
func (v View) CheckDeploy(text string) (*engine.App, error) { return v.e.CheckDeploy(text) }

// AppView is the read-only face of a deployed app.
type AppView struct{ a *engine.App }

// Name is the app's name.
func (a AppView) Name() string { return a.a.Name }

// Text is the app's text as deployed (secrets included: redact before showing it).
func (a AppView) Text() string { return a.a.Text }

// Parsed is the app's syntax tree; it must not be modified.
func (a AppView) Parsed() *siddhiql.App { return a.a.Parsed }

// Aggregations lists the app's aggregation definitions.
func (a AppView) Aggregations() []*agg.Def { return a.a.Aggregations() }

// Aggregation returns the state of an aggregation of the app by name.
func (a AppView) Aggregation(name string) (AggView, bool) {
	st, ok := a.a.Aggregation(name)
	return AggView{st}, ok
}

// Table returns a table of the app by name.
func (a AppView) Table(name string) (TableView, bool) {
	t, ok := a.a.Table(name)
	return TableView{t}, ok
}

// StoreTables lists the app's tables mirrored to the shared store.
func (a AppView) StoreTables() []TableView {
	ts := a.a.StoreTables()
	out := make([]TableView, len(ts))
	for i, t := range ts {
		out[i] = TableView{t}
	}
	return out
}

// AggView is the read-only face of an aggregation's state.
type AggView struct{ s *agg.State }

// Def is the aggregation's definition.
func (s AggView) Def() *agg.Def { return s.s.Def() }

// Keys is the number of distinct group keys.
func (s AggView) Keys() int { return s.s.Keys() }

// Len is agg.State.Len: the rows held in memory.
func (s AggView) Len() int { return s.s.Len() }

// Unflushed is agg.State.Unflushed.
func (s AggView) Unflushed() int { return s.s.Unflushed() }

// ChangedIn is agg.State.ChangedIn: the state's own rows, to be cloned before the Read
// returns.
func (s AggView) ChangedIn(since, upto uint64) map[siddhiql.Duration][]*agg.Row {
	return s.s.ChangedIn(since, upto)
}

// ChangedCounts is agg.State.ChangedCounts.
func (s AggView) ChangedCounts(since uint64, counts map[uint64]int) { s.s.ChangedCounts(since, counts) }

// TableView is the read-only face of a table.
type TableView struct{ t *table.Table }

// Name is the table's name.
func (t TableView) Name() string { return t.t.Name() }

// Store is the table's store definition (nil unless mirrored to the shared store).
func (t TableView) Store() *table.StoreDef { return t.t.Store() }

// Changes is table.Table.Changes.
func (t TableView) Changes() table.Changes { return t.t.Changes() }

// Rows is the table's rows, to be copied before the Read returns.
func (t TableView) Rows() []expr.Row { return t.t.Rows() }
