package siddhiql

import "fmt"

// RateKind is the behaviour of an output rate limit: which of the events of a period or
// count it lets through.
type RateKind uint8

// Output rate kinds, as in `output [all|first|last] every ...` and `output snapshot every ...`.
const (
	RateAll RateKind = iota
	RateFirst
	RateLast
	RateSnapshot
)

// String is the kind as the output clause spells it.
func (k RateKind) String() string {
	switch k {
	case RateFirst:
		return "first"
	case RateLast:
		return "last"
	case RateSnapshot:
		return "snapshot"
	default:
		return "all"
	}
}

// OutputRate is a query's output clause: `output [all|first|last] every N events`,
// `output [all|first|last] every <time>` or `output snapshot every <time>`. Exactly one of
// Events and Millis is positive.
type OutputRate struct {
	Pos  Pos
	Kind RateKind
	// Events is N of `every N events`; 0 for time-based limits.
	Events int64
	// Millis is the period of `every <time>`; 0 for event-count limits.
	Millis int64
}

// String writes the clause back in SiddhiQL.
func (r *OutputRate) String() string {
	if r.Events > 0 {
		return fmt.Sprintf("output %s every %d events", r.Kind, r.Events)
	}
	return fmt.Sprintf("output %s every %s", r.Kind, formatMillis(r.Millis))
}

// parseOutputRate parses the output clause; `output` is next.
func (p *parser) parseOutputRate() *OutputRate {
	out := p.advance()
	r := &OutputRate{Pos: out.pos}
	switch {
	case p.acceptWord("all"):
		r.Kind = RateAll
	case p.acceptWord("first"):
		r.Kind = RateFirst
	case p.acceptWord("last"):
		r.Kind = RateLast
	case p.acceptWord("snapshot"):
		r.Kind = RateSnapshot
	}
	p.expectWord("every", "in the output clause ('output [all|first|last|snapshot] every ...')")
	t := p.tok()
	if t.kind != tNumber {
		p.failf(t.pos, "expected a number of events or a time after 'every', found %s", t.describe())
	}
	e := p.parseExpr()
	lit, ok := e.(*Literal)
	if !ok {
		p.failf(t.pos, "expected '<n> events' or a time such as '1 min' after 'every', found %s", FormatExpr(e))
	}
	switch {
	case lit.Time:
		if lit.Int <= 0 {
			p.failf(lit.Pos, "the output period must be positive, found %s", FormatExpr(lit))
		}
		r.Millis = lit.Int
	case lit.Type == TypeInt || lit.Type == TypeLong:
		if r.Kind == RateSnapshot {
			p.failf(lit.Pos, "'output snapshot every' takes a time such as '1 sec', not a number of events")
		}
		if !p.acceptWord("events") {
			p.failf(p.tok().pos, "expected 'events' or a time unit after 'every %d', found %s", lit.Int, p.tok().describe())
		}
		if lit.Int <= 0 {
			p.failf(lit.Pos, "the number of events in 'output every' must be positive, found %d", lit.Int)
		}
		r.Events = lit.Int
	default:
		p.failf(lit.Pos, "expected '<n> events' or a time such as '1 min' after 'every', found %s", FormatExpr(lit))
	}
	return r
}
