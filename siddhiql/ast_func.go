package siddhiql

// IsNull is `X is null`: X is an attribute (`x`, `S.x`), a stream name (`S`, in joins) or a
// function call, as Siddhi's null check allows. It is true when X has no value.
type IsNull struct {
	Pos Pos // the position of X
	X   Expr
}

// Position returns where the checked expression starts.
func (e *IsNull) Position() Pos { return e.Pos }

func (*IsNull) exprNode() {}

// parseNullCheck wraps x in IsNull when `is null` follows it.
func (p *parser) parseNullCheck(x Expr) Expr {
	if !p.isWord("is") {
		return x
	}
	p.advance()
	t := p.tok()
	if !isWord(t, "null") {
		p.failf(t.pos, "expected 'null' after 'is', found %s", t.describe())
	}
	p.advance()
	return &IsNull{Pos: x.Position(), X: x}
}
