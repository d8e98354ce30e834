package siddhiql

// JoinKind is the kind of a join.
type JoinKind uint8

// Join kinds.
const (
	InnerJoin JoinKind = iota
	LeftOuterJoin
	RightOuterJoin
	FullOuterJoin
)

// String is the join as SiddhiQL writes it.
func (k JoinKind) String() string {
	switch k {
	case LeftOuterJoin:
		return "left outer join"
	case RightOuterJoin:
		return "right outer join"
	case FullOuterJoin:
		return "full outer join"
	}
	return "join"
}

// JoinSide is one input of a join: a stream (with optional filters and window), a table or
// an aggregation, by name; what the name is, the engine decides.
type JoinSide struct {
	Pos        Pos
	Name       string
	Alias      string // `as a`; empty when absent
	Filter     Expr
	Window     *Window
	PostFilter Expr
	// Unidirectional marks the only side whose events trigger the join.
	Unidirectional bool
}

// Ref is the name the side's attributes are qualified with: its alias, else its name.
func (s *JoinSide) Ref() string {
	if s.Alias != "" {
		return s.Alias
	}
	return s.Name
}

// Join is `L [unidirectional] (join|left outer join|...) R [unidirectional] [on cond]
// [within a[, b] per p]`.
type Join struct {
	Pos         Pos
	Kind        JoinKind
	Left, Right JoinSide
	On          Expr // nil when absent: every pair matches
	WithinStart Expr // nil when absent
	WithinEnd   Expr
	Per         Expr
}

// startsJoin reports whether the token after a query's first input begins a join.
func (p *parser) startsJoin() bool {
	for _, kw := range [...]string{"as", "join", "left", "right", "full", "inner", "unidirectional"} {
		if p.isWord(kw) {
			return true
		}
	}
	return false
}

// parseJoin parses the rest of a join after its left input, which q holds (From, filters,
// window) and which moves into q.Join.Left.
func (p *parser) parseJoin(q *Query) {
	j := &Join{Pos: p.tok().pos}
	j.Left = JoinSide{Pos: q.Pos, Name: q.From, Filter: q.Filter, Window: q.Window, PostFilter: q.PostFilter}
	q.Filter, q.Window, q.PostFilter = nil, nil, nil
	p.sideTail(&j.Left)
	t := p.tok()
	switch {
	case p.acceptWord("join"):
		j.Kind = InnerJoin
	case p.acceptWord("inner"):
		p.expectWord("join", "after 'inner'")
	case isWord(t, "left"), isWord(t, "right"), isWord(t, "full"):
		p.advance()
		p.expectWord("outer", "after '"+t.text+"'")
		p.expectWord("join", "after '"+t.text+" outer'")
		switch {
		case isWord(t, "left"):
			j.Kind = LeftOuterJoin
		case isWord(t, "right"):
			j.Kind = RightOuterJoin
		default:
			j.Kind = FullOuterJoin
		}
	default:
		p.failf(t.pos, "expected 'join' after the join's left input, found %s", t.describe())
	}
	rt := p.tok()
	j.Right = JoinSide{Pos: rt.pos, Name: p.parseSource()}
	j.Right.Filter = p.parseFilters()
	for p.isPunct("#") {
		w := p.parseWindow()
		if j.Right.Window != nil {
			p.failf(w.Pos, "a join input may have at most one window: found a second window %q after %q", w.Name, j.Right.Window.Name)
		}
		j.Right.Window = w
		if f := p.parseFilters(); f != nil {
			j.Right.PostFilter = f
		}
	}
	p.sideTail(&j.Right)
	if j.Left.Unidirectional && j.Right.Unidirectional {
		p.failf(j.Right.Pos, "only one side of a join can be unidirectional")
	}
	if p.acceptWord("on") {
		j.On = p.parseExpr()
	}
	if p.acceptWord("within") {
		j.WithinStart = p.parseExpr()
		if p.acceptPunct(",") {
			j.WithinEnd = p.parseExpr()
		}
		p.expectWord("per", "after the join's within clause")
		j.Per = p.parseExpr()
	}
	q.Join = j
}

// sideTail parses a join input's optional `as alias` and `unidirectional`.
func (p *parser) sideTail(s *JoinSide) {
	if p.acceptWord("as") {
		s.Alias = p.name("an alias after 'as'").text
	}
	if p.acceptWord("unidirectional") {
		s.Unidirectional = true
	}
	if p.isWord("as") {
		p.failf(p.tok().pos, "the alias of join input %s goes before 'unidirectional'", s.Name)
	}
}
