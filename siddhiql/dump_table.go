package siddhiql

import "strings"

func (d *dumper) table(depth int, t *TableDef) {
	d.line(depth, "table %s  (%s)", quoteName(t.Name), t.Pos)
	d.annotations(depth+1, t.Annotations)
	if len(t.PrimaryKey) > 0 {
		d.line(depth+1, "primary key %s", strings.Join(t.PrimaryKey, ", "))
	}
	if len(t.Indexes) > 0 {
		d.line(depth+1, "index %s", strings.Join(t.Indexes, ", "))
	}
	for _, a := range t.Attributes {
		d.line(depth+1, "attr %s %s  (%s)", quoteName(a.Name), a.Type, a.Pos)
	}
}

func (d *dumper) joinSide(depth int, label string, s *JoinSide) {
	line := label + " " + quoteName(s.Name)
	if s.Alias != "" {
		line += " as " + quoteName(s.Alias)
	}
	if s.Unidirectional {
		line += " unidirectional"
	}
	d.line(depth, "%s  (%s)", line, s.Pos)
	d.expr(depth+1, "filter", s.Filter)
	if w := s.Window; w != nil {
		args := make([]string, len(w.Args))
		for i, a := range w.Args {
			args[i] = FormatExpr(a)
		}
		d.line(depth+1, "window %s(%s)  (%s)", w.Name, strings.Join(args, ", "), w.Pos)
	}
	d.expr(depth+1, "post filter", s.PostFilter)
}

func (d *dumper) join(depth int, j *Join) {
	d.line(depth, "%s  (%s)", j.Kind, j.Pos)
	d.joinSide(depth+1, "left", &j.Left)
	d.joinSide(depth+1, "right", &j.Right)
	d.expr(depth+1, "on", j.On)
	d.expr(depth+1, "within", j.WithinStart)
	d.expr(depth+1, "within end", j.WithinEnd)
	d.expr(depth+1, "per", j.Per)
}

func (d *dumper) tableOp(depth int, q *Query) {
	op := q.TableOp
	d.line(depth, "%s %s for %s events  (%s)", op.Action, quoteName(q.Into), q.Output, op.Pos)
	for _, s := range op.Set {
		d.line(depth+1, "set %s = %s", FormatExpr(s.Target), FormatExpr(s.Value))
	}
	d.expr(depth+1, "on", op.On)
}
