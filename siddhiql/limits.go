package siddhiql

// Bounds on what one app or query may contain. Each keeps hostile or mistaken input from
// costing a node more than a bounded amount of stack, memory or time: past a bound the
// parser answers an error naming the limit (with line:column) instead of working on.
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
