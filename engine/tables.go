package engine

import (
	"fmt"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/engine/window"
	"github.com/tally-db/tally/siddhiql"
)

// compileTables creates the app's tables, empty, in text order. A `@store(type='rdbms')`
// table also records its changes for the flush (tablestore.go).
func (a *App) compileTables(p *siddhiql.App) error {
	a.tables = map[string]*table.Table{}
	for _, td := range p.Tables {
		if _, dup := a.tables[td.Name]; dup || a.streams[td.Name] != nil || a.aggs[td.Name] != nil {
			return &siddhiql.Error{Pos: td.Pos, Msg: fmt.Sprintf("%s is defined twice", td.Name)}
		}
		t := table.New(td)
		sd, err := table.ParseStore(td)
		if err != nil {
			return err
		}
		if sd != nil {
			sd.App = p.Name
			t.TrackStore(sd)
			a.storeTables = append(a.storeTables, t)
		}
		a.tables[td.Name] = t
		a.tableOrder = append(a.tableOrder, td.Name)
	}
	return nil
}

// Table returns one of the app's tables.
func (a *App) Table(name string) (*table.Table, bool) {
	t, ok := a.tables[name]
	return t, ok
}

// Tables lists the app's tables in text order.
func (a *App) Tables() []*table.Table {
	out := make([]*table.Table, 0, len(a.tableOrder))
	for _, n := range a.tableOrder {
		out = append(out, a.tables[n])
	}
	return out
}

// CompileIn implements window.InResolver: `cond in T` in a filter over fields is true when
// some row of T satisfies cond, which reads the event's attributes and T's (qualified T.x).
func (a *App) CompileIn(n *siddhiql.In, fields *expr.Fields) (*expr.Compiled, error) {
	t, ok := a.tables[n.Table]
	if !ok {
		return nil, &siddhiql.Error{Pos: n.Pos, Msg: fmt.Sprintf("'in %s': %s is not a table of this app", n.Table, n.Table)}
	}
	names := []string{fields.Stream}
	if fields.Alias != "" {
		names = append(names, fields.Alias)
	}
	nl := len(fields.Attrs)
	pair := &table.Pair{
		Left:       table.Side{Names: names, Attrs: fields.Attrs},
		Right:      table.Side{Names: []string{t.Name()}, Attrs: t.Attrs()},
		PreferLeft: true,
		What:       "'in " + t.Name() + "' condition",
	}
	cond, err := table.CompileCond(n.X, pair)
	if err != nil {
		return nil, err
	}
	if keyed := table.KeyedCond(t, cond, n.X, pair, false); keyed != nil {
		return &expr.Compiled{Type: siddhiql.TypeBool, Eval: func(row expr.Row) expr.Value {
			return expr.Bool(keyed.Match(row[:nl]) >= 0)
		}}, nil
	}
	return &expr.Compiled{Type: siddhiql.TypeBool, Eval: func(row expr.Row) expr.Value {
		ev := row[:nl]
		for _, tr := range t.Rows() {
			if cond.Holds(ev, tr) {
				return expr.Bool(true)
			}
		}
		return expr.Bool(false)
	}}, nil
}

// tableOut is a query's output into a table: insert, update, update or insert, delete.
type tableOut struct {
	t       *table.Table
	action  siddhiql.TableAction // 0 for insert
	on      *table.Cond          // over (event, table row)
	keyed   *table.Keyed         // on, looked up by primary key; nil when it does not pin the key
	set     []setter
	scratch expr.Row
}

// setter assigns one table attribute from an expression over (event, table row).
type setter struct {
	idx  int
	typ  siddhiql.Type
	eval expr.Eval
}

// connectTable checks a query's output against the table it writes and compiles its
// condition and set clause. The event the condition sees is the query's output row.
func (a *App) connectTable(q *query, t *table.Table) error {
	d := q.def
	o := &tableOut{t: t}
	if d.TableOp != nil {
		o.action = d.TableOp.Action
	}
	if o.action == 0 || o.action == siddhiql.TableUpsert {
		want := t.Attrs()
		if len(want) != len(q.attrs) {
			return &siddhiql.Error{Pos: d.Pos, Msg: fmt.Sprintf("query outputs %d attributes but table %s has %d", len(q.attrs), t.Name(), len(want))}
		}
		for i, w := range want {
			if got := q.attrs[i]; got.Type != w.Type {
				return &siddhiql.Error{Pos: d.Pos, Msg: fmt.Sprintf("query output %d (%s) is %s but attribute %s of table %s is %s", i+1, got.Name, got.Type, w.Name, t.Name(), w.Type)}
			}
		}
	}
	if o.action != 0 {
		pair := &table.Pair{
			Left:       table.Side{Names: []string{d.From}, Attrs: q.attrs},
			Right:      table.Side{Names: []string{t.Name()}, Attrs: t.Attrs()},
			PreferLeft: true,
			What:       o.action.String() + " " + t.Name(),
		}
		var err error
		if o.on, err = table.CompileCond(d.TableOp.On, pair); err != nil {
			return err
		}
		o.keyed = table.KeyedCond(t, o.on, d.TableOp.On, pair, false)
		if err := o.compileSet(d.TableOp, pair); err != nil {
			return err
		}
	}
	q.toTable = o
	return nil
}

func (o *tableOut) compileSet(op *siddhiql.TableOp, pair *table.Pair) error {
	if op.Action == siddhiql.TableDelete {
		return nil
	}
	attrs := o.t.Attrs()
	if len(op.Set) == 0 { // no set clause: every output attribute the table has
		for i, ea := range pair.Left.Attrs {
			for j, ta := range attrs {
				if ta.Name == ea.Name {
					idx := i
					o.set = append(o.set, setter{idx: j, typ: ta.Type, eval: func(r expr.Row) expr.Value { return r[idx] }})
				}
			}
		}
		return nil
	}
	for _, s := range op.Set {
		j := slices.IndexFunc(attrs, func(a siddhiql.Attribute) bool { return a.Name == s.Target.Name })
		if j < 0 {
			return &siddhiql.Error{Pos: s.Pos, Msg: fmt.Sprintf("set: table %s has no attribute %q", o.t.Name(), s.Target.Name)}
		}
		c, err := expr.Compile(s.Value, pair)
		if err != nil {
			return err
		}
		tt := attrs[j].Type
		if !assignable(c.Type, tt) {
			return &siddhiql.Error{Pos: s.Value.Position(), Msg: fmt.Sprintf("set: %s is %s but attribute %s of table %s is %s", siddhiql.FormatExpr(s.Value), c.Type, attrs[j].Name, o.t.Name(), tt)}
		}
		o.set = append(o.set, setter{idx: j, typ: tt, eval: c.Eval})
	}
	return nil
}

// assignable reports whether a value of type from can be set into an attribute of type to:
// the same type, an int into a long, or any number into a float or double (expr.Convert).
// A null constant (TypeInvalid) fits anything.
func assignable(from, to siddhiql.Type) bool {
	switch {
	case from == to, from == siddhiql.TypeInvalid:
		return true
	case to == siddhiql.TypeFloat || to == siddhiql.TypeDouble:
		return from.Numeric()
	case to == siddhiql.TypeLong:
		return from == siddhiql.TypeInt
	}
	return false
}

// apply performs the output for one event (the query's output row).
func (o *tableOut) apply(ev expr.Row) {
	switch o.action {
	case 0:
		o.t.Insert(ev)
	case siddhiql.TableDelete:
		if o.keyed != nil {
			if i := o.keyed.Match(ev); i >= 0 {
				o.t.DeleteAt(i)
			}
			return
		}
		o.t.Delete(func(tr expr.Row) bool { return o.on.Holds(ev, tr) })
	case siddhiql.TableUpdate, siddhiql.TableUpsert:
		set := func(tr expr.Row) expr.Row {
			o.scratch = append(append(o.scratch[:0], ev...), tr...)
			nr := slices.Clone(tr)
			for _, s := range o.set {
				v, ok := expr.Convert(s.eval(o.scratch), s.typ)
				if !ok {
					v = expr.Null
				}
				nr[s.idx] = v
			}
			return nr
		}
		var n int
		if o.keyed != nil {
			if i := o.keyed.Match(ev); i >= 0 {
				n = 1
				o.t.UpdateAt(i, set)
			}
		} else {
			n = o.t.Update(func(tr expr.Row) bool { return o.on.Holds(ev, tr) }, set)
		}
		if n == 0 && o.action == siddhiql.TableUpsert {
			o.t.Insert(ev)
		}
	}
}

// process runs one query over events that arrived on stream name.
func (q *query) process(name string, now int64, events []expr.Row, emit func(window.Output)) {
	if q.join != nil {
		q.join.process(name, now, events, emit)
		return
	}
	if q.fn != nil {
		if events = q.fn.process(now, events); len(events) == 0 {
			return
		}
	}
	q.rt.Process(now, events, emit)
}

// advance moves one query's clock to now.
func (q *query) advance(now int64, emit func(window.Output)) {
	if q.join != nil {
		q.join.advance(now, emit)
		return
	}
	q.rt.Advance(now, emit)
}
