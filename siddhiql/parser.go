package siddhiql

import (
	"strings"
)

// bailout carries a parse error up the recursive descent; only the entry points recover it,
// and they recover nothing else, so a real bug still panics (and the fuzz tests see it).
type bailout struct{ err *Error }

// parser reads tokens from the lexer on demand, so that the first error in the text wins,
// whether lexical or syntactic.
type parser struct {
	lx    *lexer
	toks  []token // lexed so far; the last is tEOF once the end is reached
	i     int
	depth int // nesting of expressions and annotations, bounded by MaxDepth
	// inPartition is set between a partition's begin and end, where inner streams are allowed.
	inPartition bool

	exprNest int // nesting of parseExpr calls: 0 outside any expression
	nodes    int // nodes of the outermost expression being parsed, bounded by MaxExprNodes
}

// nest enters one level of recursion at pos; call the returned func to leave it.
func (p *parser) nest(pos Pos) func() {
	p.depth++
	if p.depth > MaxDepth {
		p.failf(pos, "nested too deeply (more than %d levels)", MaxDepth)
	}
	return func() { p.depth-- }
}

// node counts one operand or operator of the expression being parsed at pos.
func (p *parser) node(pos Pos) {
	p.nodes++
	if p.nodes > MaxExprNodes {
		p.failf(pos, "expression too large (more than %d operands and operators)", MaxExprNodes)
	}
}

func newParser(text string) *parser {
	return &parser{lx: &lexer{src: text, line: 1, col: 1}}
}

func (p *parser) tok() token { return p.peek(0) }

// peek returns the token k places ahead, or the final EOF.
func (p *parser) peek(k int) token {
	for len(p.toks) <= p.i+k {
		if n := len(p.toks); n > 0 && p.toks[n-1].kind == tEOF {
			return p.toks[n-1]
		}
		t, err := p.lx.next()
		if err != nil {
			panic(bailout{err})
		}
		p.toks = append(p.toks, t)
	}
	return p.toks[p.i+k]
}

func (p *parser) advance() token {
	t := p.tok()
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) failf(pos Pos, format string, args ...any) {
	panic(bailout{errAt(pos, format, args...)})
}

// isWord reports whether t is the unquoted keyword kw (case-insensitive).
func isWord(t token, kw string) bool {
	return t.kind == tIdent && !t.quoted && strings.EqualFold(t.text, kw)
}

func (p *parser) isWord(kw string) bool { return isWord(p.tok(), kw) }
func (p *parser) isPunct(s string) bool { return p.tok().kind == tPunct && p.tok().text == s }

// acceptWord consumes the keyword kw if it is next.
func (p *parser) acceptWord(kw string) bool {
	if p.isWord(kw) {
		p.advance()
		return true
	}
	return false
}

func (p *parser) acceptPunct(s string) bool {
	if p.isPunct(s) {
		p.advance()
		return true
	}
	return false
}

// expectWord consumes kw or fails with "expected 'kw' <context>, found X".
func (p *parser) expectWord(kw, context string) token {
	if !p.isWord(kw) {
		p.failf(p.tok().pos, "expected '%s' %s, found %s", kw, context, p.tok().describe())
	}
	return p.advance()
}

func (p *parser) expectPunct(s, context string) token {
	if !p.isPunct(s) {
		p.failf(p.tok().pos, "expected '%s' %s, found %s", s, context, p.tok().describe())
	}
	return p.advance()
}

// name consumes an identifier (keywords allowed: the position makes it a name).
func (p *parser) name(what string) token {
	if p.tok().kind != tIdent {
		p.failf(p.tok().pos, "expected %s, found %s", what, p.tok().describe())
	}
	return p.advance()
}

// run parses with f and turns a bailout into an error.
func run(text string, f func(p *parser)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			err = b.err
		}
	}()
	f(newParser(text))
	return nil
}

// Parse parses and validates a whole SiddhiQL app. The error, if any, is an *Error.
func Parse(text string) (*App, error) {
	var app *App
	err := run(text, func(p *parser) { app = p.parseApp() })
	if err != nil {
		return nil, err
	}
	return app, nil
}

// ParseStoreQuery parses one on-demand query against an aggregation; a trailing ';' is
// allowed. The error, if any, is an *Error.
func ParseStoreQuery(text string) (*StoreQuery, error) {
	if len(text) > MaxStoreQueryBytes {
		return nil, errAt(Pos{Line: 1, Col: 1}, "store query is %d bytes, more than the limit of %d", len(text), MaxStoreQueryBytes)
	}
	var q *StoreQuery
	err := run(text, func(p *parser) {
		q = p.parseStoreQuery()
		p.acceptPunct(";")
		if p.tok().kind != tEOF {
			p.failf(p.tok().pos, "unexpected %s after store query", p.tok().describe())
		}
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// ParseExpr parses a single expression. The error, if any, is an *Error.
func ParseExpr(text string) (Expr, error) {
	var e Expr
	err := run(text, func(p *parser) {
		e = p.parseExpr()
		if p.tok().kind != tEOF {
			p.failf(p.tok().pos, "unexpected %s after expression", p.tok().describe())
		}
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// defined remembers where each stream and aggregation was defined, to reject duplicates.
type defined map[string]Pos

func (d defined) add(p *parser, name string, pos Pos) {
	if prev, ok := d[name]; ok {
		p.failf(pos, "%q is already defined at %s", name, prev)
	}
	d[name] = pos
}

func (p *parser) parseApp() *App {
	app := &App{}
	defs := defined{}
	queries := map[string]Pos{}
	first := true
	for p.tok().kind != tEOF {
		anns := p.parseAnnotations()
		var rest []*Annotation
		for _, a := range anns {
			if !strings.HasPrefix(strings.ToLower(a.Name), "app:") {
				rest = append(rest, a)
				continue
			}
			if !first || len(rest) > 0 {
				p.failf(a.Pos, "app annotation @%s must come before all definitions, queries and other annotations", a.Name)
			}
			p.addAppAnnotation(app, a)
		}
		first = false
		if p.tok().kind == tEOF {
			if len(rest) > 0 {
				p.failf(rest[0].Pos, "annotation @%s is not followed by a definition or query", rest[0].Name)
			}
			break
		}
		var what string
		switch t := p.tok(); {
		case isWord(t, "define"):
			what = p.parseDefinition(app, rest, defs)
		case isWord(t, "from"):
			q := p.parseQuery(rest)
			if q.Name != "" {
				if prev, ok := queries[q.Name]; ok {
					p.failf(q.Pos, "query name %q is already used by the query at %s", q.Name, prev)
				}
				queries[q.Name] = q.Pos
			}
			app.Queries = append(app.Queries, q)
			what = "query"
		case isWord(t, "partition"):
			app.Partitions = append(app.Partitions, p.parsePartition(rest, len(app.Queries), queries))
			what = "partition"
		default:
			p.failf(t.pos, "expected 'define' or 'from', found %s", t.describe())
		}
		if p.tok().kind == tEOF {
			break
		}
		if !p.acceptPunct(";") {
			p.failf(p.tok().pos, "expected ';' after %s, found %s", what, p.tok().describe())
		}
	}
	return app
}

func (p *parser) addAppAnnotation(app *App, a *Annotation) {
	if strings.EqualFold(a.Name, "app:name") {
		if app.Name != "" {
			p.failf(a.Pos, "duplicate @app:name")
		}
		if len(a.Elements) != 1 || len(a.Annotations) != 0 ||
			(a.Elements[0].Key != "" && !strings.EqualFold(a.Elements[0].Key, "name")) {
			p.failf(a.Pos, "@app:name takes one value, as in @app:name('MyApp')")
		}
		if a.Elements[0].Value == "" {
			p.failf(a.Elements[0].Pos, "@app:name must not be empty")
		}
		app.Name = a.Elements[0].Value
	}
	app.Annotations = append(app.Annotations, a)
}

func (p *parser) parseDefinition(app *App, anns []*Annotation, defs defined) string {
	def := p.advance() // define
	kind := p.tok()
	switch {
	case isWord(kind, "stream"):
		p.advance()
		s := p.parseStreamDef(def.pos, anns)
		defs.add(p, s.Name, s.Pos)
		app.Streams = append(app.Streams, s)
		return "stream definition"
	case isWord(kind, "aggregation"):
		p.advance()
		a := p.parseAggregation(def.pos, anns)
		defs.add(p, a.Name, a.Pos)
		app.Aggregations = append(app.Aggregations, a)
		return "aggregation definition"
	case isWord(kind, "trigger"):
		p.advance()
		t := p.parseTrigger(def.pos, anns)
		defs.add(p, t.Name, def.pos)
		app.Triggers = append(app.Triggers, t)
		return "trigger definition"
	}
	if isWord(kind, "table") {
		p.advance()
		t := p.parseTableDef(def.pos, anns)
		defs.add(p, t.Name, t.Pos)
		app.Tables = append(app.Tables, t)
		return "table definition"
	}
	for _, k := range [...]string{"window", "function"} {
		if isWord(kind, k) {
			p.failf(kind.pos, "define %s is not supported: only streams and aggregations can be defined", k)
		}
	}
	p.failf(kind.pos, "expected 'stream' or 'aggregation' after 'define', found %s", kind.describe())
	return ""
}

// parseAnnotations parses zero or more annotations.
func (p *parser) parseAnnotations() []*Annotation {
	var anns []*Annotation
	for p.isPunct("@") {
		anns = append(anns, p.parseAnnotation())
	}
	return anns
}

// parseAnnotation parses @name, @ns:name, and @name(elem, @nested(...), ...).
func (p *parser) parseAnnotation() *Annotation {
	at := p.expectPunct("@", "")
	defer p.nest(at.pos)()
	a := &Annotation{Pos: at.pos, Name: p.name("an annotation name after '@'").text}
	if p.acceptPunct(":") {
		a.Name += ":" + p.name("an annotation name after ':'").text
	}
	if !p.acceptPunct("(") {
		return a
	}
	if p.acceptPunct(")") {
		return a
	}
	for {
		if p.isPunct("@") {
			a.Annotations = append(a.Annotations, p.parseAnnotation())
		} else {
			a.Elements = append(a.Elements, p.parseElement(a.Name))
		}
		if p.acceptPunct(")") {
			return a
		}
		p.expectPunct(",", "or ')' in annotation @"+a.Name)
	}
}

// parseElement parses 'value' or key='value'; keys may be dotted (jdbc.url), and Siddhi
// also allows '-' and ':' as separators.
func (p *parser) parseElement(ann string) Element {
	t := p.tok()
	if t.kind == tString {
		p.advance()
		return Element{Pos: t.pos, Value: t.text}
	}
	if t.kind != tIdent {
		p.failf(t.pos, "expected key='value' or 'value' in annotation @%s, found %s", ann, t.describe())
	}
	key := p.advance().text
	for p.isPunct(".") || p.isPunct("-") || p.isPunct(":") {
		sep := p.advance().text
		key += sep + p.name("the rest of the annotation key '"+key+sep+"'").text
	}
	p.expectPunct("=", "after annotation key '"+key+"'")
	v := p.tok()
	if v.kind != tString {
		p.failf(v.pos, "annotation value of %s must be a quoted string, found %s", key, v.describe())
	}
	p.advance()
	return Element{Pos: t.pos, Key: key, Value: v.text}
}

// findAnn returns the annotations named name (case-insensitive).
func findAnn(anns []*Annotation, name string) []*Annotation {
	var out []*Annotation
	for _, a := range anns {
		if strings.EqualFold(a.Name, name) {
			out = append(out, a)
		}
	}
	return out
}

// parseType maps an attribute type keyword to its Type.
func parseType(s string) Type {
	switch strings.ToLower(s) {
	case "string":
		return TypeString
	case "int":
		return TypeInt
	case "long":
		return TypeLong
	case "float":
		return TypeFloat
	case "double":
		return TypeDouble
	case "bool":
		return TypeBool
	case "object":
		return TypeObject
	}
	return TypeInvalid
}

func (p *parser) parseStreamDef(pos Pos, anns []*Annotation) *StreamDef {
	s := &StreamDef{Pos: pos, Annotations: anns, Name: p.name("a stream name").text}
	p.expectPunct("(", "after stream name "+s.Name)
	seen := map[string]bool{}
	for {
		n := p.name("an attribute name")
		if seen[n.text] {
			p.failf(n.pos, "duplicate attribute %q in stream %s", n.text, s.Name)
		}
		seen[n.text] = true
		tt := p.tok()
		if tt.kind != tIdent {
			p.failf(tt.pos, "expected a type for attribute %s, found %s", n.text, tt.describe())
		}
		typ := parseType(tt.text)
		if typ == TypeInvalid || tt.quoted {
			p.failf(tt.pos, "unknown type %q for attribute %s: types are string, int, long, double, float, bool, object", tt.text, n.text)
		}
		p.advance()
		s.Attributes = append(s.Attributes, Attribute{Pos: n.pos, Name: n.text, Type: typ})
		if p.acceptPunct(")") {
			break
		}
		p.expectPunct(",", "or ')' in stream "+s.Name)
	}
	s.Routing = p.routing(s)
	return s
}

// routing reads the stream's @distribution annotation; roundRobin when there is none.
func (p *parser) routing(s *StreamDef) Routing {
	ds := findAnn(s.Annotations, "distribution")
	if len(ds) == 0 {
		return Routing{Strategy: RoundRobin}
	}
	if len(ds) > 1 {
		p.failf(ds[1].Pos, "stream %s has more than one @distribution", s.Name)
	}
	d := ds[0]
	if len(d.Annotations) > 0 {
		p.failf(d.Annotations[0].Pos, "@%s is not supported inside @distribution: a stream's @distribution spreads its events over partition groups", d.Annotations[0].Name)
	}
	var strategy, key *Element
	for i := range d.Elements {
		e := &d.Elements[i]
		switch {
		case strings.EqualFold(e.Key, "strategy"):
			if strategy != nil {
				p.failf(e.Pos, "duplicate strategy in @distribution")
			}
			strategy = e
		case strings.EqualFold(e.Key, "partitionKey"):
			if key != nil {
				p.failf(e.Pos, "duplicate partitionKey in @distribution")
			}
			key = e
		case e.Key == "":
			p.failf(e.Pos, "@distribution takes strategy='...' and partitionKey='...', found the value '%s' without a key", e.Value)
		default:
			p.failf(e.Pos, "unknown @distribution element %s: supported are strategy and partitionKey", e.Key)
		}
	}
	r := Routing{Strategy: RoundRobin}
	if strategy != nil {
		switch strings.ToLower(strategy.Value) {
		case "roundrobin":
			r.Strategy = RoundRobin
		case "partitioned":
			r.Strategy = Partitioned
		case "broadcast":
			r.Strategy = Broadcast
		default:
			p.failf(strategy.Pos, "unknown @distribution strategy %q: supported are partitioned, roundRobin, broadcast", strategy.Value)
		}
	}
	if r.Strategy != Partitioned {
		if key != nil {
			p.failf(key.Pos, "partitionKey is only allowed with strategy='partitioned', not %s", r.Strategy)
		}
		return r
	}
	if key == nil {
		p.failf(d.Pos, "@distribution(strategy='partitioned') needs partitionKey='<attribute>'")
	}
	for _, a := range s.Attributes {
		if a.Name == key.Value {
			r.PartitionKey = a.Name
			return r
		}
	}
	p.failf(key.Pos, "partitionKey %q is not an attribute of stream %s", key.Value, s.Name)
	return r
}

// quoteName writes a name for messages and dumps, in backticks when it is not a plain
// identifier or is a reserved word.
func quoteName(s string) string {
	if s == "" || !isLetter(s[0]) || isReserved(s) {
		return "`" + s + "`"
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return "`" + s + "`"
		}
	}
	return s
}
