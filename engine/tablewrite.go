package engine

import (
	"fmt"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/window"
	"github.com/tally-db/tally/siddhiql"
)

// IsTableWrite reports whether query is an on-demand write (`select ... insert into T`,
// `update T ...`, `update or insert into T ...`, `delete T ...`) rather than a read.
func IsTableWrite(query string) bool { return siddhiql.IsTableWrite(query) }

// CheckTableWrite returns the error TableWrite would return, changing nothing.
func (e *Engine) CheckTableWrite(app, query string) error {
	_, _, err := e.compileTableWrite(app, query)
	return err
}

// TableWrite applies an on-demand write to a table of app, as log entry index at stamped
// time now: the select's values (constants) are the event that is inserted, or that the
// condition and set clause read. A write is replicated state: every replica applies the same
// command to the same table. On error nothing changes.
func (e *Engine) TableWrite(index uint64, now int64, app, query string) error {
	q, row, err := e.compileTableWrite(app, query)
	if err != nil {
		return err
	}
	e.advance(now)
	e.stampTables(index)
	q.toTable.apply(row)
	return nil
}

func (e *Engine) compileTableWrite(app, text string) (*query, expr.Row, error) {
	a, ok := e.apps[app]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownApp, app)
	}
	qd, err := siddhiql.ParseTableWrite(text)
	if err != nil {
		return nil, nil, err
	}
	t, ok := a.tables[qd.Into]
	if !ok {
		return nil, nil, &siddhiql.Error{Pos: qd.Pos, Msg: fmt.Sprintf("app %s has no table %s", app, qd.Into)}
	}
	q := &query{def: qd}
	var row expr.Row
	if len(qd.Select) > 0 {
		sq := &siddhiql.Query{Pos: qd.Pos, Select: qd.Select, Into: "#write"}
		sel, err := window.CompileJoin(sq, nil, &expr.Fields{}, nil)
		if err != nil {
			return nil, nil, err
		}
		q.attrs = sel.OutputAttrs()
		sel.Select(e.now, []window.Joined{{Row: expr.Row{}}}, func(o window.Output) { row = o.Row })
		if len(row) != len(q.attrs) {
			return nil, nil, &siddhiql.Error{Pos: qd.Pos, Msg: "the select of an on-demand write must give one row of values"}
		}
	}
	if err := a.connectTable(q, t); err != nil {
		return nil, nil, err
	}
	return q, row, nil
}
