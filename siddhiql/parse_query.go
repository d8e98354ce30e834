package siddhiql

import (
	"fmt"
	"strings"
)

// parseQuery parses `from S[f]#window.w(..)[f] select .. group by .. having .. insert
// [current|expired|all events] into Out`; `from` is next.
func (p *parser) parseQuery(anns []*Annotation) *Query {
	from := p.advance()
	q := &Query{Pos: from.pos, Annotations: anns}
	q.Name = p.queryName(anns)
	q.From = p.parseSource()
	q.Filter = p.parseFilters()
	for p.isPunct("#") {
		if !isWord(p.peek(1), "window") { // a stream function (parse_streamfunc.go)
			p.parseQueryStreamFunc(q)
			continue
		}
		w := p.parseWindow()
		if q.Window != nil {
			p.failf(w.Pos, "a query may have at most one window: found a second window %q after %q", w.Name, q.Window.Name)
		}
		q.Window = w
		if f := p.parseFilters(); f != nil {
			q.PostFilter = f
		}
	}
	if p.startsJoin() {
		p.parseJoin(q)
	}
	p.rejectJoinOrPattern()
	if p.acceptWord("select") {
		if p.acceptPunct("*") {
			q.SelectAll = true
		} else {
			q.Select = p.parseSelectList()
		}
	} else {
		q.SelectAll = true
	}
	if p.acceptWord("group") {
		q.GroupBy = p.parseGroupBy()
	}
	if p.acceptWord("having") {
		q.Having = p.parseExpr()
	}
	p.parseQueryOrder(q) // parse_aggjoin.go
	t := p.tok()
	switch {
	case isWord(t, "insert"):
		p.parseInsert(q)
	case isWord(t, "output"):
		q.Rate = p.parseOutputRate()
		if !p.isWord("insert") {
			p.failf(p.tok().pos, "expected 'insert into' after the output clause, found %s", p.tok().describe())
		}
		p.parseInsert(q)
	case isWord(t, "update"), isWord(t, "delete"):
		p.parseTableOutput(q)
	case isWord(t, "return"):
		p.failf(t.pos, "'return' is not supported: queries can only 'insert into' a stream")
	default:
		p.failf(t.pos, "expected 'insert into' to end the query, found %s", t.describe())
	}
	return q
}

// queryName reads @info(name='...').
func (p *parser) queryName(anns []*Annotation) string {
	infos := findAnn(anns, "info")
	if len(infos) > 1 {
		p.failf(infos[1].Pos, "a query may have only one @info")
	}
	name := ""
	for _, in := range infos {
		for _, e := range in.Elements {
			if strings.EqualFold(e.Key, "name") {
				if e.Value == "" {
					p.failf(e.Pos, "@info name must not be empty")
				}
				name = e.Value
			}
		}
	}
	return name
}

// rejectJoinOrPattern names the construct when a join, pattern or sequence follows the
// input stream.
func (p *parser) rejectJoinOrPattern() {
	t := p.tok()
	if isWord(t, "outer") {
		p.failf(t.pos, "'outer' must follow 'left', 'right' or 'full'")
	}
	for _, kw := range [...]string{"join", "left", "right", "full", "inner", "unidirectional"} {
		if isWord(t, kw) {
			p.failf(t.pos, "joins are not supported here")
		}
	}
	switch {
	case isWord(t, "as"):
		p.failf(t.pos, "stream aliases ('as') are only used in joins, which are not supported")
	case t.kind == tPunct && t.text == "->":
		p.failf(t.pos, "patterns and sequences ('->') are not supported")
	case t.kind == tPunct && t.text == ",":
		p.failf(t.pos, "sequences (',' between streams) are not supported")
	}
}

func (p *parser) parseInsert(q *Query) {
	p.advance() // insert
	kind := p.tok()
	switch {
	case isWord(kind, "current"):
		q.Output = CurrentEvents
	case isWord(kind, "expired"):
		q.Output = ExpiredEvents
	case isWord(kind, "all"):
		q.Output = AllEvents
	}
	if q.Output != CurrentEvents || isWord(kind, "current") {
		p.advance()
		if p.isWord("raw") {
			p.failf(p.tok().pos, "raw events are not supported")
		}
		p.expectWord("events", "after 'insert "+strings.ToLower(kind.text)+"'")
	} else {
		p.acceptWord("events")
	}
	p.expectWord("into", "after 'insert'")
	t := p.tok()
	if t.kind == tPunct && t.text == "#" {
		if !p.inPartition {
			p.failf(t.pos, "inner streams ('#') belong to partitions: use them between a partition's begin and end")
		}
		p.advance()
		q.Into = "#" + p.name("an inner stream name after '#'").text
		return
	}
	q.Into = p.name("an output stream name after 'into'").text
}

// windowSpec describes a supported window: canonical name, argument count range and usage.
type windowSpec struct {
	name     string
	min, max int
	usage    string
}

func lookupWindow(name string) (windowSpec, bool) {
	specs := [...]windowSpec{
		{"length", 1, 1, "length(n)"},
		{"lengthBatch", 1, 2, "lengthBatch(n[, stream.current.event])"},
		{"time", 1, 1, "time(t)"},
		{"timeBatch", 1, 3, "timeBatch(t[, start.time][, stream.current.event])"},
		{"externalTime", 2, 2, "externalTime(timestamp, t)"},
		{"externalTimeBatch", 2, 5, "externalTimeBatch(timestamp, t[, start.time[, timeout[, replace.with.batchtime]]])"},
	}
	for _, s := range specs {
		if strings.EqualFold(s.name, name) {
			return s, true
		}
	}
	return windowSpec{}, false
}

const supportedWindows = "supported windows are length, lengthBatch, time, timeBatch, externalTime, externalTimeBatch"

// parseWindow parses #window.name(args); '#' is next. Stream functions (#str:x(..)) and
// unknown or namespaced windows are errors.
func (p *parser) parseWindow() *Window {
	hash := p.advance()
	t := p.name("'window.<name>' after '#'")
	if !isWord(t, "window") {
		name := t.text
		if p.acceptPunct(":") {
			name += ":" + p.name("a function name after '"+name+":'").text
		}
		p.failf(hash.pos, "stream function #%s is not supported: only #window.<name>(...) is", name)
	}
	p.expectPunct(".", "after '#window'")
	n := p.name("a window name after '#window.'")
	name := n.text
	if p.acceptPunct(":") {
		name += ":" + p.name("a window name after '"+name+":'").text
		p.failf(n.pos, "unknown window %q: namespaced windows are not supported; %s", name, supportedWindows)
	}
	spec, ok := lookupWindow(name)
	if !ok {
		p.failf(n.pos, "unknown window %q: %s", name, supportedWindows)
	}
	w := &Window{Pos: n.pos, Name: spec.name}
	open := p.expectPunct("(", "after window "+name)
	if !p.acceptPunct(")") {
		for {
			w.Args = append(w.Args, p.parseExpr())
			if p.acceptPunct(")") {
				break
			}
			p.expectPunct(",", "or ')' in window "+name+" opened at "+open.pos.String())
		}
	}
	if n := len(w.Args); n < spec.min || n > spec.max {
		want := fmt.Sprint(spec.min)
		if spec.max != spec.min {
			want = fmt.Sprintf("%d to %d", spec.min, spec.max)
		}
		plural := "s"
		if spec.max == 1 {
			plural = ""
		}
		p.failf(w.Pos, "window %s takes %s argument%s, %s; found %d", spec.name, want, plural, spec.usage, n)
	}
	if strings.HasPrefix(spec.name, "external") {
		if _, ok := w.Args[0].(*Variable); !ok {
			p.failf(w.Args[0].Position(), "the first argument of window %s must be the timestamp attribute", spec.name)
		}
	}
	return w
}

// parseSelectList parses out_attr (',' out_attr)*; out_attr is expr ('as' name)?.
func (p *parser) parseSelectList() []OutputAttr {
	var out []OutputAttr
	seen := map[string]Pos{}
	for {
		start := p.tok().pos
		e := p.parseExpr()
		oa := OutputAttr{Pos: start, Expr: e}
		if p.acceptWord("as") {
			oa.Alias = p.name("an output name after 'as'").text
		}
		name := oa.OutputName()
		if name == "" {
			p.failf(start, "select expression needs 'as <name>'")
		}
		if prev, dup := seen[name]; dup {
			p.failf(start, "duplicate output attribute %q in select (first at %s)", name, prev)
		}
		seen[name] = start
		out = append(out, oa)
		if !p.acceptPunct(",") {
			return out
		}
	}
}

// parseVar parses an attribute reference (x or S.x) where only that is allowed.
func (p *parser) parseVar(context string) *Variable {
	start := p.tok().pos
	v, ok := p.parseExpr().(*Variable)
	if !ok {
		p.failf(start, "%s needs attribute names, not expressions", context)
	}
	return v
}

// parseGroupBy parses `by var, ...`; `group` is consumed.
func (p *parser) parseGroupBy() []*Variable {
	p.expectWord("by", "after 'group'")
	var vs []*Variable
	for {
		vs = append(vs, p.parseVar("group by"))
		if !p.acceptPunct(",") {
			return vs
		}
	}
}

// parseStoreQuery parses `from Agg [as a] [on e] within e[, e] per e [select ...]
// [group by ...] [having e] [order by v [asc|desc], ...] [limit e] [offset e]`.
func (p *parser) parseStoreQuery() *StoreQuery {
	from := p.expectWord("from", "at the start of a store query")
	q := &StoreQuery{Pos: from.pos}
	q.From = p.name("an aggregation name after 'from'").text
	if p.acceptWord("as") {
		q.Alias = p.name("an alias after 'as'").text
	}
	p.rejectJoinOrPattern()
	if p.acceptWord("on") {
		q.On = p.parseExpr()
	}
	if !p.acceptWord("within") {
		p.failf(p.tok().pos, "store query on an aggregation needs 'within'")
	}
	q.WithinStart = p.parseExpr()
	if p.acceptPunct(",") {
		q.WithinEnd = p.parseExpr()
	}
	if !p.acceptWord("per") {
		p.failf(p.tok().pos, "store query on an aggregation needs 'per'")
	}
	q.Per = p.parseExpr()
	if lit, ok := q.Per.(*Literal); ok {
		if lit.Type != TypeString {
			p.failf(lit.Pos, "per needs a duration string such as 'hours', found %s", FormatExpr(lit))
		}
		if _, ok := ParseDuration(lit.Str); !ok {
			p.failf(lit.Pos, "unknown per duration %q: use seconds, minutes, hours, days, months or years", lit.Str)
		}
	}
	p.parseQuerySection(q)
	return q
}

// parseQuerySection parses what follows a store query's source: `[select ...] [group by
// ...] [having cond] [order by v [asc|desc], ...] [limit n] [offset n]`, into q. Without
// select, the query selects everything.
func (p *parser) parseQuerySection(q *StoreQuery) {
	if p.acceptWord("select") {
		if p.acceptPunct("*") {
			q.SelectAll = true
		} else {
			q.Select = p.parseSelectList()
		}
	} else {
		q.SelectAll = true
	}
	if p.acceptWord("group") {
		q.GroupBy = p.parseGroupBy()
	}
	if p.acceptWord("having") {
		q.Having = p.parseExpr()
	}
	q.OrderBy, q.Limit, q.Offset = p.parseOrderLimit()
}

// parseOrderLimit parses the optional `order by k [asc|desc], …`, `limit N` and `offset N`
// that end a store query or a join with an aggregation.
func (p *parser) parseOrderLimit() (order []OrderKey, limit, offset Expr) {
	if p.acceptWord("order") {
		p.expectWord("by", "after 'order'")
		for {
			k := OrderKey{Var: p.parseVar("order by")}
			if p.acceptWord("desc") {
				k.Desc = true
			} else {
				p.acceptWord("asc")
			}
			order = append(order, k)
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if p.acceptWord("limit") {
		limit = p.parseExpr()
	}
	if p.acceptWord("offset") {
		offset = p.parseExpr()
	}
	return order, limit, offset
}
