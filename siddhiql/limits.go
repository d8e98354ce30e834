package siddhiql

import (
	"cmp"
	"slices"
)

// Bounds on what one app or query may contain. Each keeps hostile or mistaken input from
// costing a node more than a bounded amount of stack, memory or time: past a bound the
// parser answers an error naming the limit (with line:column) instead of working on.
//
// MaxDepth and MaxExprNodes hold wherever text is parsed. MaxAppBytes, MaxQueries and
// MaxDefinitions are checked by CheckAppLimits where an app is submitted (the HTTP API):
// an app already in the replicated log or a snapshot parses as it always did, whatever
// its size, so raising or adding a limit never strands a deployed app.
const (
	// MaxDepth bounds the nesting of expressions (parentheses, unary operators, call
	// arguments) and of annotations. Recursive descent uses one stack frame per level, so
	// input such as 10^6 '(' fails with an error instead of overflowing the stack.
	MaxDepth = 200

	// MaxExprNodes bounds the size of one expression: its operands and operators, counted
	// over every nested sub-expression. Compiling and evaluating an expression recurses
	// once per operator along its longest path, which is therefore at most this long.
	MaxExprNodes = 10000

	// MaxAppBytes bounds the text of one app.
	MaxAppBytes = 1 << 20

	// MaxStoreQueryBytes bounds the text of one store query.
	MaxStoreQueryBytes = 1 << 20

	// MaxQueries bounds the queries in one app.
	MaxQueries = 1000

	// MaxDefinitions bounds the definitions (streams, aggregations and the like) in one app.
	MaxDefinitions = 1000
)

// CheckAppLimits checks a parsed app and its text against MaxAppBytes, MaxQueries and
// MaxDefinitions. The error, if any, is an *Error at the first definition or query past
// the limit.
func CheckAppLimits(text string, app *App) error {
	if len(text) > MaxAppBytes {
		return errAt(Pos{Line: 1, Col: 1}, "app text is %d bytes, more than the limit of %d", len(text), MaxAppBytes)
	}
	if len(app.Queries) > MaxQueries {
		return errAt(app.Queries[MaxQueries].Pos, "too many queries: an app holds at most %d", MaxQueries)
	}
	var defs []Pos
	for _, s := range app.Streams {
		defs = append(defs, s.Pos)
	}
	for _, a := range app.Aggregations {
		defs = append(defs, a.Pos)
	}
	if len(defs) > MaxDefinitions {
		slices.SortFunc(defs, func(a, b Pos) int { return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col)) })
		return errAt(defs[MaxDefinitions], "too many definitions: an app holds at most %d", MaxDefinitions)
	}
	return nil
}
