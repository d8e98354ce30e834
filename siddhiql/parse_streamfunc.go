package siddhiql

import (
	"fmt"
	"strings"
)

// StreamFunc is a stream function of a query's input (`from S#markov:markovChain(...)`):
// it adds attributes to each event, or drops events, before the window and the selector.
type StreamFunc struct {
	Pos Pos
	// Name is the function's namespaced name as Tally spells it (e.g. "markov:markovChain").
	Name string
	Args []Expr
	// Filter is the filter between the function and the window (`#f(..)[cond]`); nil when
	// absent.
	Filter Expr
}

// streamFuncs are the stream functions Tally has, by their lower-case name.
var streamFuncs = map[string]string{"markov:markovchain": "markov:markovChain"}

// parseStreamFunc parses #ns:name(args)[filter]; '#' is next and is not followed by
// 'window'.
func (p *parser) parseStreamFunc() *StreamFunc {
	hash := p.advance()
	t := p.name("'window.<name>' or a stream function after '#'")
	name := t.text
	if p.acceptPunct(":") {
		name += ":" + p.name("a function name after '"+name+":'").text
	}
	canon, ok := streamFuncs[strings.ToLower(name)]
	if !ok {
		p.failf(hash.pos, "stream function #%s is not supported: Tally has #window.<name>(...) and #markov:markovChain(...)", name)
	}
	f := &StreamFunc{Pos: t.pos, Name: canon}
	open := p.expectPunct("(", "after stream function "+name)
	if !p.acceptPunct(")") {
		for {
			f.Args = append(f.Args, p.parseExpr())
			if p.acceptPunct(")") {
				break
			}
			p.expectPunct(",", "or ')' in stream function "+name+" opened at "+open.pos.String())
		}
	}
	f.Filter = p.parseFilters()
	return f
}

// parseQueryStreamFunc reads a stream function into q, which may have one, before its
// window.
func (p *parser) parseQueryStreamFunc(q *Query) {
	pos := p.tok().pos
	f := p.parseStreamFunc()
	switch {
	case q.StreamFunc != nil:
		p.failf(pos, "a query may have at most one stream function: found #%s after #%s", f.Name, q.StreamFunc.Name)
	case q.Window != nil:
		p.failf(pos, "stream function #%s after window %s: put the stream function before the window", f.Name, q.Window.Name)
	case p.inPartition:
		p.failf(pos, "stream function #%s inside a partition is not supported", f.Name)
	}
	q.StreamFunc = f
}

// String formats the function as the query spells it.
func (f *StreamFunc) String() string {
	args := make([]string, len(f.Args))
	for i, a := range f.Args {
		args[i] = FormatExpr(a)
	}
	return fmt.Sprintf("#%s(%s)", f.Name, strings.Join(args, ", "))
}
