package siddhiql

import (
	"strings"
)

// TableDef is `define table Name (attr type, ...)` with its annotations: @primaryKey and
// @index name attributes (names are matched case-insensitively, as Siddhi does), and @store
// is kept as written (the engine holds every table in memory).
type TableDef struct {
	Pos         Pos
	Name        string
	Attributes  []Attribute
	Annotations []*Annotation
	// PrimaryKey lists the @primaryKey attributes in the order given; empty without one.
	PrimaryKey []string
	// Indexes lists the @index attributes; the in-memory table keeps no separate index, so
	// they only have to name attributes.
	Indexes []string
	// Store is the @store annotation, or nil for an in-memory table.
	Store *Annotation
}

// TableAction is what a query output does to a table.
type TableAction uint8

// Table actions besides `insert into`.
const (
	TableUpdate TableAction = iota + 1
	TableUpsert
	TableDelete
)

// String is the action as SiddhiQL writes it.
func (a TableAction) String() string {
	switch a {
	case TableUpdate:
		return "update"
	case TableUpsert:
		return "update or insert into"
	case TableDelete:
		return "delete"
	}
	return "?"
}

// TableOp is the output clause `update T [for E events] [set ...] on cond`, `update or insert
// into T ... on cond` or `delete T [for E events] on cond`. The table is Query.Into and the
// event kinds Query.Output.
type TableOp struct {
	Pos    Pos
	Action TableAction
	Set    []SetAssign
	On     Expr
}

// SetAssign is one `T.attr = expr` of a set clause. Target names a table attribute; its
// stream qualifier, if any, is not checked (Siddhi only reads the attribute name).
type SetAssign struct {
	Pos    Pos
	Target *Variable
	Value  Expr
}

// In is `cond in Table`: true when some row of the table satisfies cond, which reads the
// table's attributes qualified by its name (`T.x`) and the event's attributes.
type In struct {
	Pos   Pos
	X     Expr
	Table string
}

// Position returns the position of 'in'.
func (e *In) Position() Pos { return e.Pos }
func (*In) exprNode()       {}

// parseIn parses `in Table` after x; 'in' is next.
func (p *parser) parseIn(x Expr) Expr {
	t := p.advance()
	n := p.name("a table name after 'in'")
	return &In{Pos: t.pos, X: x, Table: n.text}
}

// parseTableDef parses `Name (attr type, ...)` after `define table`.
func (p *parser) parseTableDef(pos Pos, anns []*Annotation) *TableDef {
	s := p.parseStreamDef(pos, nil)
	t := &TableDef{Pos: pos, Name: s.Name, Attributes: s.Attributes, Annotations: anns}
	for _, a := range anns {
		switch {
		case strings.EqualFold(a.Name, "primaryKey"):
			if t.PrimaryKey != nil {
				p.failf(a.Pos, "table %s has more than one @primaryKey", t.Name)
			}
			t.PrimaryKey = p.tableAttrList(t, a)
		case strings.EqualFold(a.Name, "index"):
			t.Indexes = append(t.Indexes, p.tableAttrList(t, a)...)
		case strings.EqualFold(a.Name, "store"):
			if t.Store != nil {
				p.failf(a.Pos, "table %s has more than one @store", t.Name)
			}
			t.Store = a
		case strings.EqualFold(a.Name, "distribution"):
			p.failf(a.Pos, "@distribution belongs on streams, not on table %s", t.Name)
		}
	}
	return t
}

// tableAttrList reads @primaryKey('a', 'b') or @index('a'): positional values naming
// distinct attributes of the table.
func (p *parser) tableAttrList(t *TableDef, a *Annotation) []string {
	if len(a.Elements) == 0 {
		p.failf(a.Pos, "@%s of table %s needs at least one attribute name", a.Name, t.Name)
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range a.Elements {
		if e.Key != "" {
			p.failf(e.Pos, "@%s takes attribute names ('a', 'b'), found the key %s", a.Name, e.Key)
		}
		found := ""
		for _, at := range t.Attributes {
			if at.Name == e.Value {
				found = at.Name
			}
		}
		if found == "" {
			p.failf(e.Pos, "@%s names %q, which is not an attribute of table %s", a.Name, e.Value, t.Name)
		}
		if seen[found] {
			p.failf(e.Pos, "@%s names %q twice", a.Name, found)
		}
		seen[found] = true
		out = append(out, found)
	}
	return out
}

// parseTableOutput parses the `update ...`, `update or insert into ...` or `delete ...`
// output clause of q; 'update' or 'delete' is next.
func (p *parser) parseTableOutput(q *Query) {
	kw := p.advance()
	op := &TableOp{Pos: kw.pos}
	switch {
	case isWord(kw, "delete"):
		op.Action = TableDelete
	case p.isWord("or"):
		p.advance()
		p.expectWord("insert", "after 'update or'")
		p.expectWord("into", "after 'update or insert'")
		op.Action = TableUpsert
	default:
		op.Action = TableUpdate
	}
	q.Into = p.name("a table name after '" + op.Action.String() + "'").text
	if p.acceptWord("for") {
		k := p.tok()
		switch {
		case isWord(k, "current"):
			q.Output = CurrentEvents
		case isWord(k, "expired"):
			q.Output = ExpiredEvents
		case isWord(k, "all"):
			q.Output = AllEvents
		default:
			p.failf(k.pos, "expected 'current', 'expired' or 'all' after 'for', found %s", k.describe())
		}
		p.advance()
		p.expectWord("events", "after 'for "+strings.ToLower(k.text)+"'")
	}
	if op.Action != TableDelete && p.acceptWord("set") {
		for {
			start := p.tok().pos
			if p.tok().kind != tIdent {
				p.failf(start, "set needs a table attribute (T.attr) before '=', found %s", p.tok().describe())
			}
			v, ok := p.parseName().(*Variable)
			if !ok {
				p.failf(start, "set needs a table attribute (T.attr) before '='")
			}
			p.expectPunct("=", "after set attribute "+v.Name)
			op.Set = append(op.Set, SetAssign{Pos: start, Target: v, Value: p.parseExpr()})
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	p.expectWord("on", "and a condition after '"+op.Action.String()+" "+q.Into+"'")
	op.On = p.parseExpr()
	q.TableOp = op
}

// ParseTableQuery parses an on-demand query that reads a table: `from T [as t] [on cond]
// [select ...] [group by ...] [having cond] [order by v [asc|desc], ...] [limit n]
// [offset n]`, with an optional trailing ';'. The result has no within or per. The error,
// if any, is an *Error.
func ParseTableQuery(text string) (*StoreQuery, error) {
	var q *StoreQuery
	err := run(text, func(p *parser) {
		from := p.expectWord("from", "at the start of a table query")
		q = &StoreQuery{Pos: from.pos, From: p.name("a table name after 'from'").text}
		if p.acceptWord("as") {
			q.Alias = p.name("an alias after 'as'").text
		}
		if p.acceptWord("on") {
			q.On = p.parseExpr()
		}
		if p.isWord("within") || p.isWord("per") {
			p.failf(p.tok().pos, "'%s' is for store queries on aggregations, and %s is a table", strings.ToLower(p.tok().text), q.From)
		}
		p.parseQuerySection(q)
		p.acceptPunct(";")
		if p.tok().kind != tEOF {
			p.failf(p.tok().pos, "unexpected %s after table query", p.tok().describe())
		}
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// QueryTarget returns the name after a query's leading `from`, or "" when the text does not
// start with `from NAME`. It reads no further, so it tells a table query from a store query
// on an aggregation before either is parsed.
func QueryTarget(text string) string {
	name := ""
	_ = run(text, func(p *parser) {
		if p.acceptWord("from") && p.tok().kind == tIdent {
			name = p.tok().text
		}
	})
	return name
}

// IsTableWrite reports whether text starts like an on-demand write (`select`, `insert`,
// `update` or `delete`) rather than a read (`from`).
func IsTableWrite(text string) bool {
	w := false
	_ = run(text, func(p *parser) {
		w = p.isWord("select") || p.isWord("insert") || p.isWord("update") || p.isWord("delete")
	})
	return w
}

// ParseTableWrite parses an on-demand write to a table: `select <constants> insert into T`,
// `[select <constants>] update [or insert into] T [set T.a = e, ...] on cond` or
// `[select <constants>] delete T on cond`, with an optional trailing ';'. The result is a
// Query with no input (From is empty) whose output is the write. The error, if any, is an
// *Error.
func ParseTableWrite(text string) (*Query, error) {
	var q *Query
	err := run(text, func(p *parser) {
		q = &Query{Pos: p.tok().pos}
		if p.acceptWord("select") {
			q.Select = p.parseSelectList()
		}
		t := p.tok()
		switch {
		case isWord(t, "insert"):
			if len(q.Select) == 0 {
				p.failf(t.pos, "an on-demand insert needs a select of the values to insert")
			}
			p.parseInsert(q)
		case isWord(t, "update"), isWord(t, "delete"):
			p.parseTableOutput(q)
		default:
			p.failf(t.pos, "expected 'insert into', 'update' or 'delete' in an on-demand write, found %s", t.describe())
		}
		p.acceptPunct(";")
		if p.tok().kind != tEOF {
			p.failf(p.tok().pos, "unexpected %s after the on-demand write", p.tok().describe())
		}
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}
