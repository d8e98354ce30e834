package siddhiql

import (
	"fmt"
	"strconv"
	"strings"
)

// FormatExpr writes e as SiddhiQL text that parses back to the same tree: binary
// operations are fully parenthesized, time literals are written in units (1 min 30 sec).
func FormatExpr(e Expr) string {
	var b strings.Builder
	formatExpr(&b, e)
	return b.String()
}

func formatExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case nil:
		b.WriteString("<nil>")
	case *Literal:
		b.WriteString(formatLiteral(e))
	case *Variable:
		if e.Stream != "" {
			b.WriteString(quoteName(e.Stream))
			b.WriteByte('.')
		}
		b.WriteString(quoteName(e.Name))
	case *Binary:
		b.WriteByte('(')
		formatExpr(b, e.L)
		b.WriteByte(' ')
		b.WriteString(e.Op.String())
		b.WriteByte(' ')
		formatExpr(b, e.R)
		b.WriteByte(')')
	case *Unary:
		if e.Op == OpNot {
			b.WriteString("not ")
		} else {
			b.WriteString("-")
		}
		switch e.X.(type) {
		case *Variable, *Call, *Binary:
			formatExpr(b, e.X)
		default: // -(-5) must not become --5, which is a comment
			b.WriteByte('(')
			formatExpr(b, e.X)
			b.WriteByte(')')
		}
	case *In:
		b.WriteByte('(')
		formatExpr(b, e.X)
		b.WriteString(" in ")
		b.WriteString(quoteName(e.Table))
		b.WriteByte(')')
	case *Call:
		if e.Namespace != "" {
			b.WriteString(quoteName(e.Namespace))
			b.WriteByte(':')
		}
		b.WriteString(quoteName(e.Name))
		b.WriteByte('(')
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			formatExpr(b, a)
		}
		b.WriteByte(')')
	case *IsNull:
		b.WriteByte('(')
		formatExpr(b, e.X)
		b.WriteString(" is null)")
	default:
		fmt.Fprintf(b, "<%T>", e)
	}
}

func formatLiteral(l *Literal) string {
	switch l.Type {
	case TypeString:
		return formatString(l.Str)
	case TypeBool:
		return strconv.FormatBool(l.Bool)
	case TypeInt:
		return strconv.FormatInt(l.Int, 10)
	case TypeLong:
		if l.Time {
			return formatMillis(l.Int)
		}
		return strconv.FormatInt(l.Int, 10) + "L"
	case TypeFloat:
		return strconv.FormatFloat(l.Float, 'g', -1, 32) + "f"
	case TypeDouble:
		s := strconv.FormatFloat(l.Float, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0"
		}
		return s
	}
	return fmt.Sprintf("<%s literal>", l.Type)
}

// formatString quotes s with the escapes the lexer reads back.
func formatString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatAnnotation writes @name(key='value', 'value', @nested(...)).
func formatAnnotation(a *Annotation) string {
	var b strings.Builder
	b.WriteString("@" + a.Name)
	if len(a.Elements)+len(a.Annotations) == 0 {
		return b.String()
	}
	b.WriteByte('(')
	sep := ""
	for _, e := range a.Elements {
		b.WriteString(sep)
		if e.Key != "" {
			b.WriteString(e.Key + "=")
		}
		b.WriteString(formatString(e.Value))
		sep = ", "
	}
	for _, n := range a.Annotations {
		b.WriteString(sep + formatAnnotation(n))
		sep = ", "
	}
	b.WriteByte(')')
	return b.String()
}

// dumper writes an indented tree, one node a line.
type dumper struct {
	b strings.Builder
}

func (d *dumper) line(depth int, format string, args ...any) {
	d.b.WriteString(strings.Repeat("  ", depth))
	fmt.Fprintf(&d.b, format, args...)
	d.b.WriteByte('\n')
}

func (d *dumper) annotations(depth int, anns []*Annotation) {
	for _, a := range anns {
		d.line(depth, "%s  (%s)", formatAnnotation(a), a.Pos)
	}
}

func (d *dumper) selectList(depth int, all bool, sel []OutputAttr) {
	if all {
		d.line(depth, "select *")
		return
	}
	d.line(depth, "select")
	for _, o := range sel {
		if o.Alias != "" {
			d.line(depth+1, "%s as %s  (%s)", FormatExpr(o.Expr), quoteName(o.Alias), o.Pos)
		} else {
			d.line(depth+1, "%s  (%s)", FormatExpr(o.Expr), o.Pos)
		}
	}
}

func (d *dumper) vars(depth int, label string, vs []*Variable) {
	if len(vs) == 0 {
		return
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = FormatExpr(v)
	}
	d.line(depth, "%s %s", label, strings.Join(names, ", "))
}

func (d *dumper) expr(depth int, label string, e Expr) {
	if e != nil {
		d.line(depth, "%s %s  (%s)", label, FormatExpr(e), e.Position())
	}
}

// Dump writes app as a deterministic, indented text tree, for golden tests and debugging.
func Dump(app *App) string {
	d := &dumper{}
	d.line(0, "app %q", app.Name)
	d.annotations(1, app.Annotations)
	for _, s := range app.Streams {
		d.stream(1, s)
	}
	for _, a := range app.Aggregations {
		d.aggregation(1, a)
	}
	for _, t := range app.Tables {
		d.table(1, t)
	}
	for _, q := range app.Queries {
		d.query(1, q)
	}
	d.triggersAndPartitions(app)
	return d.b.String()
}

func (d *dumper) stream(depth int, s *StreamDef) {
	d.line(depth, "stream %s  (%s)", quoteName(s.Name), s.Pos)
	d.annotations(depth+1, s.Annotations)
	if s.Routing.Strategy == Partitioned {
		d.line(depth+1, "routing %s partitionKey=%s", s.Routing.Strategy, s.Routing.PartitionKey)
	} else {
		d.line(depth+1, "routing %s", s.Routing.Strategy)
	}
	for _, a := range s.Attributes {
		d.line(depth+1, "attr %s %s  (%s)", quoteName(a.Name), a.Type, a.Pos)
	}
}

func retentionText(ms int64) string {
	if ms == RetainAll {
		return "all"
	}
	return formatMillis(ms)
}

func (d *dumper) aggregation(depth int, a *AggregationDef) {
	d.line(depth, "aggregation %s  (%s)", quoteName(a.Name), a.Pos)
	d.annotations(depth+1, a.Annotations)
	d.line(depth+1, "from %s", quoteName(a.From))
	d.expr(depth+1, "filter", a.Filter)
	d.selectList(depth+1, false, a.Select)
	d.vars(depth+1, "group by", a.GroupBy)
	if a.AggregateBy != "" {
		d.line(depth+1, "aggregate by %s", quoteName(a.AggregateBy))
	} else {
		d.line(depth+1, "aggregate by arrival time")
	}
	durs := make([]string, len(a.Durations))
	for i, du := range a.Durations {
		durs[i] = du.String()
	}
	d.line(depth+1, "every %s", strings.Join(durs, ", "))
	if a.Store != nil {
		d.line(depth+1, "store %s", formatAnnotation(a.Store))
	} else {
		d.line(depth+1, "store in-memory")
	}
	d.line(depth+1, "partitionById %t", a.PartitionByID)
	if a.Purge == nil {
		d.line(depth+1, "purge <nil>")
		return
	}
	d.line(depth+1, "purge enable=%t interval=%s", a.Purge.Enable, formatMillis(a.Purge.IntervalMillis))
	for _, du := range AllDurations { // fixed order, never map order
		if ms, ok := a.Purge.Retention[du]; ok {
			d.line(depth+2, "retain %s %s", du, retentionText(ms))
		}
	}
}

func (d *dumper) query(depth int, q *Query) {
	d.line(depth, "query %q  (%s)", q.Name, q.Pos)
	d.annotations(depth+1, q.Annotations)
	d.line(depth+1, "from %s", quoteName(q.From))
	if q.Join != nil {
		d.join(depth+1, q.Join)
	}
	d.expr(depth+1, "filter", q.Filter)
	if f := q.StreamFunc; f != nil {
		d.line(depth+1, "stream function %s  (%s)", f, f.Pos)
		d.expr(depth+1, "function filter", f.Filter)
	}
	if w := q.Window; w != nil {
		args := make([]string, len(w.Args))
		for i, a := range w.Args {
			args[i] = FormatExpr(a)
		}
		d.line(depth+1, "window %s(%s)  (%s)", w.Name, strings.Join(args, ", "), w.Pos)
	}
	d.expr(depth+1, "post filter", q.PostFilter)
	d.selectList(depth+1, q.SelectAll, q.Select)
	d.vars(depth+1, "group by", q.GroupBy)
	d.expr(depth+1, "having", q.Having)
	if q.Rate != nil {
		d.line(depth+1, "%s  (%s)", q.Rate, q.Rate.Pos)
	}
	if q.TableOp != nil {
		d.tableOp(depth+1, q)
		return
	}
	d.line(depth+1, "insert %s events into %s", q.Output, quoteName(q.Into))
}

// DumpStoreQuery writes q as a deterministic, indented text tree.
func DumpStoreQuery(q *StoreQuery) string {
	d := &dumper{}
	if q.Alias != "" {
		d.line(0, "store query from %s as %s  (%s)", quoteName(q.From), quoteName(q.Alias), q.Pos)
	} else {
		d.line(0, "store query from %s  (%s)", quoteName(q.From), q.Pos)
	}
	d.expr(1, "on", q.On)
	d.expr(1, "within", q.WithinStart)
	d.expr(1, "within end", q.WithinEnd)
	d.expr(1, "per", q.Per)
	d.selectList(1, q.SelectAll, q.Select)
	d.vars(1, "group by", q.GroupBy)
	d.expr(1, "having", q.Having)
	for _, k := range q.OrderBy {
		dir := "asc"
		if k.Desc {
			dir = "desc"
		}
		d.line(1, "order by %s %s", FormatExpr(k.Var), dir)
	}
	d.expr(1, "limit", q.Limit)
	d.expr(1, "offset", q.Offset)
	return d.b.String()
}
