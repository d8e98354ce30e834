package siddhiql

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// isReserved reports whether s is a keyword that cannot be a bare variable or function
// name in an expression (write `select` in backticks to use it as a name).
func isReserved(s string) bool {
	switch strings.ToLower(s) {
	case "select", "from", "insert", "into", "group", "by", "having", "order", "limit",
		"offset", "as", "and", "or", "not", "true", "false", "within", "per", "on", "define",
		"is", "in", "null", "every", "join", "output", "update", "delete", "return",
		"partition", "aggregate":
		return true
	}
	return false
}

// parseExpr parses an expression: or < and < not < == != < < <= > >= < + - < * / % < unary -.
// Every operand and operator counts towards MaxExprNodes of the outermost expression.
func (p *parser) parseExpr() Expr {
	defer p.nest(p.tok().pos)()
	if p.exprNest == 0 {
		p.nodes = 0
	}
	p.exprNest++
	defer func() { p.exprNest-- }()
	return p.parseOr()
}

func (p *parser) parseOr() Expr {
	x := p.parseAnd()
	for p.isWord("or") {
		op := p.advance()
		p.node(op.pos)
		x = &Binary{Pos: op.pos, Op: OpOr, L: x, R: p.parseAnd()}
	}
	return x
}

func (p *parser) parseAnd() Expr {
	x := p.parseNot()
	for p.isWord("and") {
		op := p.advance()
		p.node(op.pos)
		x = &Binary{Pos: op.pos, Op: OpAnd, L: x, R: p.parseNot()}
	}
	return x
}

func (p *parser) parseNot() Expr {
	if p.isWord("not") {
		op := p.advance()
		defer p.nest(op.pos)()
		p.node(op.pos)
		return &Unary{Pos: op.pos, Op: OpNot, X: p.parseNot()}
	}
	return p.parseEquality()
}

// binaryOps maps an operator token to its Op within one precedence level.
func binaryOp(t token, ops ...Op) Op {
	if t.kind != tPunct {
		return OpInvalid
	}
	for _, o := range ops {
		if o.String() == t.text {
			return o
		}
	}
	return OpInvalid
}

// parseEquality parses == and !=, which Siddhi binds looser than < <= > >=.
func (p *parser) parseEquality() Expr {
	x := p.parseRelational()
	for {
		if op := binaryOp(p.tok(), OpEq, OpNe); op != OpInvalid {
			pos := p.advance().pos
			p.node(pos)
			x = &Binary{Pos: pos, Op: op, L: x, R: p.parseRelational()}
			continue
		}
		t := p.tok()
		switch {
		case isWord(t, "is"):
			p.failf(t.pos, "'is null' applies to an attribute, a stream or a function call, not to %s", FormatExpr(x))
		case isWord(t, "in"):
			x = p.parseIn(x)
			continue
		case t.kind == tPunct && t.text == "=":
			p.failf(t.pos, "use '==' to compare, not '='")
		}
		return x
	}
}

func (p *parser) parseRelational() Expr {
	x := p.parseAdditive()
	for {
		op := binaryOp(p.tok(), OpLt, OpLe, OpGt, OpGe)
		if op == OpInvalid {
			return x
		}
		pos := p.advance().pos
		p.node(pos)
		x = &Binary{Pos: pos, Op: op, L: x, R: p.parseAdditive()}
	}
}

func (p *parser) parseAdditive() Expr {
	x := p.parseMultiplicative()
	for {
		op := binaryOp(p.tok(), OpAdd, OpSub)
		if op == OpInvalid {
			return x
		}
		pos := p.advance().pos
		p.node(pos)
		x = &Binary{Pos: pos, Op: op, L: x, R: p.parseMultiplicative()}
	}
}

func (p *parser) parseMultiplicative() Expr {
	x := p.parseUnary()
	for {
		op := binaryOp(p.tok(), OpMul, OpDiv, OpMod)
		if op == OpInvalid {
			return x
		}
		pos := p.advance().pos
		p.node(pos)
		x = &Binary{Pos: pos, Op: op, L: x, R: p.parseUnary()}
	}
}

// parseUnary parses -x. A sign directly before a number is part of the literal, as in
// Siddhi's grammar, so -2147483648 is a valid int.
func (p *parser) parseUnary() Expr {
	if p.isPunct("-") || p.isPunct("+") {
		sign := p.tok()
		if p.peek(1).kind == tNumber {
			p.node(sign.pos)
			p.advance()
			return p.parseSignedNumber(sign.text == "-", sign.pos)
		}
		if sign.text == "+" {
			p.failf(sign.pos, "unary '+' is only allowed before a number")
		}
		p.advance()
		defer p.nest(sign.pos)()
		p.node(sign.pos)
		return &Unary{Pos: sign.pos, Op: OpNeg, X: p.parseUnary()}
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() Expr {
	t := p.tok()
	p.node(t.pos)
	switch t.kind {
	case tNumber:
		return p.parseNumber()
	case tString:
		p.advance()
		return &Literal{Pos: t.pos, Type: TypeString, Str: t.text}
	case tPunct:
		if t.text == "(" {
			p.advance()
			x := p.parseExpr()
			p.expectPunct(")", "to close '(' at "+t.pos.String())
			return x
		}
		if t.text == "->" {
			p.failf(t.pos, "patterns and sequences ('->') are not supported")
		}
	case tIdent:
		return p.parseName()
	}
	p.failf(t.pos, "expected an expression, found %s", t.describe())
	return nil
}

// parseName parses true/false, a variable (x, S.x) or a call (f(..), ns:f(..)).
func (p *parser) parseName() Expr {
	t := p.tok()
	if !t.quoted {
		switch strings.ToLower(t.text) {
		case "true", "false":
			p.advance()
			return &Literal{Pos: t.pos, Type: TypeBool, Bool: strings.EqualFold(t.text, "true")}
		case "null":
			p.failf(t.pos, "null is not supported")
		}
		if isReserved(t.text) {
			p.failf(t.pos, "expected an expression, found %s", t.describe())
		}
	}
	p.advance()
	switch {
	case p.isPunct("("):
		return p.parseNullCheck(p.parseCall(t.pos, "", t.text))
	case p.isPunct(":") && p.peek(1).kind == tIdent && p.peek(2).kind == tPunct && p.peek(2).text == "(":
		p.advance()
		name := p.advance()
		return p.parseNullCheck(p.parseCall(t.pos, t.text, name.text))
	case p.isPunct("."):
		p.advance()
		n := p.name("an attribute name after '" + t.text + ".'")
		return p.parseNullCheck(&Variable{Pos: t.pos, Stream: t.text, Name: n.text})
	case p.isPunct("["):
		p.failf(p.tok().pos, "indexed event references (%s[...]) are only used in patterns, which are not supported", t.text)
	}
	return p.parseNullCheck(&Variable{Pos: t.pos, Name: t.text})
}

func (p *parser) parseCall(pos Pos, ns, name string) Expr {
	open := p.expectPunct("(", "")
	c := &Call{Pos: pos, Namespace: ns, Name: name}
	if p.acceptPunct(")") {
		return c
	}
	for {
		if p.isPunct("*") {
			p.failf(p.tok().pos, "'*' is not a function argument; write %s()", name)
		}
		c.Args = append(c.Args, p.parseExpr())
		if p.acceptPunct(")") {
			return c
		}
		p.expectPunct(",", "or ')' in the call opened at "+open.pos.String())
	}
}

// parseNumber parses a number literal; an int or long followed by a time unit starts a
// time literal.
func (p *parser) parseNumber() Expr {
	return p.parseSignedNumber(false, p.tok().pos)
}

// numberBody splits a number token into its digits and lower-case suffix (l, f, d or 0).
func numberBody(text string) (string, byte) {
	if text == "" {
		return text, 0
	}
	switch c := text[len(text)-1] | 0x20; c {
	case 'l', 'f', 'd':
		return text[:len(text)-1], c
	}
	return text, 0
}

func (p *parser) isTimeUnit(t token) bool {
	if t.kind != tIdent || t.quoted {
		return false
	}
	_, ok := TimeUnitMillis(t.text)
	return ok
}

func (p *parser) parseSignedNumber(neg bool, pos Pos) Expr {
	t := p.advance()
	body, suffix := numberBody(t.text)
	frac := strings.ContainsAny(body, ".eE")
	sign := ""
	if neg {
		sign = "-"
	}
	if frac || suffix == 'f' || suffix == 'd' {
		if p.isTimeUnit(p.tok()) {
			p.failf(t.pos, "a time value must be a whole number, found %s", t.text)
		}
		if suffix == 'l' {
			p.failf(t.pos, "malformed long literal %s", t.text)
		}
		bits, typ, name := 64, TypeDouble, "double"
		if suffix == 'f' {
			bits, typ, name = 32, TypeFloat, "float"
		}
		f, err := strconv.ParseFloat(body, bits)
		if err != nil {
			p.failf(pos, "%s literal %s%s is out of range", name, sign, t.text)
		}
		if neg {
			f = -f
		}
		return &Literal{Pos: pos, Type: typ, Float: f}
	}
	if p.isTimeUnit(p.tok()) {
		lit := p.parseTime(t)
		if neg {
			return &Unary{Pos: pos, Op: OpNeg, X: lit}
		}
		return lit
	}
	v, err := strconv.ParseInt(sign+body, 10, 64)
	if suffix == 'l' {
		if err != nil {
			p.failf(pos, "long literal %s%s is out of range", sign, t.text)
		}
		return &Literal{Pos: pos, Type: TypeLong, Int: v}
	}
	if err != nil || v < math.MinInt32 || v > math.MaxInt32 {
		p.failf(pos, "int literal %s%s is out of range: add 'L' for a long", sign, t.text)
	}
	return &Literal{Pos: pos, Type: TypeInt, Int: v}
}

// parseTime parses `1 min 30 sec` into milliseconds; first is the number already consumed
// and a time unit is next. Units go from largest to smallest, each at most once (Siddhi's
// time_value rule).
func (p *parser) parseTime(first token) *Literal {
	var total int64
	rank := -1
	prevUnit := ""
	num := first
	for {
		body, suffix := numberBody(num.text)
		if suffix != 0 && suffix != 'l' || strings.ContainsAny(body, ".eE") {
			p.failf(num.pos, "a time value must be a whole number, found %s", num.text)
		}
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				p.failf(num.pos, "time value %s is out of range", num.text)
			}
			p.failf(num.pos, "malformed time value %s", num.text)
		}
		unit := p.advance()
		ms, _ := TimeUnitMillis(unit.text)
		r := timeUnitRank(ms)
		if r <= rank {
			p.failf(unit.pos, "time units must go from largest to smallest, each at most once: found '%s' after '%s'", unit.text, prevUnit)
		}
		rank, prevUnit = r, unit.text
		v, ok := mulMillis(n, ms)
		if ok {
			total, ok = addMillis(total, v)
		}
		if !ok {
			p.failf(first.pos, "time literal starting with %s %s overflows a long", first.text, unit.text)
		}
		if p.tok().kind != tNumber || !p.isTimeUnit(p.peek(1)) {
			return &Literal{Pos: first.pos, Type: TypeLong, Int: total, Time: true}
		}
		num = p.advance()
	}
}
