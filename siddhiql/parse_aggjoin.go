package siddhiql

import "strings"

// QueryOrder is `order by v [asc|desc], ... [limit n] [offset n]` of a join query: it orders
// and cuts the outputs of each chunk a triggering event joins to. The engine accepts it on
// joins with an aggregation only.
type QueryOrder struct {
	Pos     Pos
	OrderBy []OrderKey
	Limit   Expr // nil when absent
	Offset  Expr // nil when absent
}

// parseQueryOrder parses a streaming query's optional `order by`, `limit` and `offset`, which
// only a join may have.
func (p *parser) parseQueryOrder(q *Query) {
	t := p.tok()
	if !isWord(t, "order") && !isWord(t, "limit") && !isWord(t, "offset") {
		return
	}
	if q.Join == nil {
		what := t.text
		if isWord(t, "order") {
			what = "order by"
		}
		p.failf(t.pos, "%s is not supported in streaming queries other than joins with an aggregation", strings.ToLower(what))
	}
	o := &QueryOrder{Pos: t.pos}
	o.OrderBy, o.Limit, o.Offset = p.parseOrderLimit()
	q.Order = o
}

// persistedAggregation reads @persistedAggregation(enable='true|false',
// is.read.only='true|false') and reports whether the aggregation is read-only. enable changes
// nothing: Tally aggregates in memory and writes the rows to the shared store either way.
func (p *parser) persistedAggregation(an *Annotation) bool {
	if len(an.Annotations) > 0 {
		p.failf(an.Annotations[0].Pos, "@%s does not take nested annotations", an.Name)
	}
	readOnly := false
	seen := map[string]bool{}
	for _, e := range an.Elements {
		key := strings.ToLower(e.Key)
		if seen[key] {
			p.failf(e.Pos, "duplicate %s in @%s", e.Key, an.Name)
		}
		seen[key] = true
		switch key {
		case "enable":
			p.boolValue(e, "@"+an.Name+" enable")
		case "is.read.only":
			readOnly = p.boolValue(e, "@"+an.Name+" is.read.only")
		default:
			p.failf(e.Pos, "unknown @%s element %q: supported are enable and is.read.only", an.Name, e.Key)
		}
	}
	return readOnly
}
