package partition

import (
	"github.com/tally-db/tally/siddhiql"
)

// checkTables reports, for groups > 1, every query that writes or reads a table and every
// join. Each group holds its own copy of a table, filled only by the events routed to it,
// and its own join windows, so what a query finds there would depend on which group an
// event happened to reach.
func checkTables(app *siddhiql.App, groups int, report func(siddhiql.Pos, string, ...any)) {
	tables := map[string]bool{}
	for _, t := range app.Tables {
		tables[t.Name] = true
	}
	aggs := map[string]bool{}
	for _, a := range app.Aggregations {
		aggs[a.Name] = true
	}
	for i, q := range app.Queries {
		name := queryName(i, q)
		switch {
		case q.Join != nil && (aggs[q.Join.Left.Name] || aggs[q.Join.Right.Name]):
			stream, agg := q.Join.Left.Name, q.Join.Right.Name
			if aggs[stream] {
				stream, agg = agg, stream
			}
			report(q.Pos, "%s joins %s with aggregation %s: with %d groups each group holds only the rows of the events routed to it, and a trigger or any other stream fires the join in every group it reaches, so each group would answer with its own part of the aggregation. Run the app with one group, or read the aggregation with a store query, which merges every group's rows",
				name, stream, agg, groups)
		case q.Join != nil:
			report(q.Pos, "%s joins %s with %s: with %d groups each group keeps its own join windows and tables, filled only by the events routed to it, so what an event finds to join would depend on which group it reached. Run the app with one group",
				name, q.Join.Left.Name, q.Join.Right.Name, groups)
		case tables[q.Into]:
			report(q.Pos, "%s writes table %s: with %d groups each group holds its own copy of %s, changed only by the events routed to it, so reads of it would depend on which group an event reached. Run the app with one group",
				name, q.Into, groups, q.Into)
		default:
			if t := queryReadsTable(q, tables); t != "" {
				report(q.Pos, "%s reads table %s ('in %s'): with %d groups each group holds its own copy of %s. Run the app with one group",
					name, t, t, groups, t)
			}
		}
	}
}

// queryReadsTable returns a table that an `in` in q's filters, select or having reads, or "".
func queryReadsTable(q *siddhiql.Query, tables map[string]bool) string {
	exprs := []siddhiql.Expr{q.Filter, q.PostFilter, q.Having}
	for _, o := range q.Select {
		exprs = append(exprs, o.Expr)
	}
	for _, e := range exprs {
		if t := readsTable(e, tables); t != "" {
			return t
		}
	}
	return ""
}

// readsTable returns the table an `in` in e reads, or "".
func readsTable(e siddhiql.Expr, tables map[string]bool) string {
	switch n := e.(type) {
	case *siddhiql.In:
		if tables[n.Table] {
			return n.Table
		}
		return readsTable(n.X, tables)
	case *siddhiql.Binary:
		if t := readsTable(n.L, tables); t != "" {
			return t
		}
		return readsTable(n.R, tables)
	case *siddhiql.Unary:
		return readsTable(n.X, tables)
	case *siddhiql.Call:
		for _, a := range n.Args {
			if t := readsTable(a, tables); t != "" {
				return t
			}
		}
	}
	return ""
}
