// Package siddhiql parses the subset of SiddhiQL that Tally runs: stream definitions,
// incremental aggregations, windowed filter/alert queries and on-demand (store) queries
// against aggregations.
//
// Parse turns a whole app into an *App; ParseStoreQuery parses one on-demand query and
// ParseExpr a single expression. The package is pure: no I/O, no clocks, no mutable package
// state, so every function is safe for concurrent use.
//
// Every error is an *Error with a 1-based line:column. Anything outside the subset
// (tables, partitions, joins, patterns, output rate limiting, unknown windows, ...) is
// rejected with a message naming the construct; nothing is silently ignored.
//
// Positions: definitions and queries are at their `define`/`from` keyword (the first
// annotation does not move them); a Binary or Unary expression is at its operator; a
// qualified variable (S.price) is at the stream name; a time literal (1 min 30 sec) is at
// its first number; a negative number literal (-5) is folded into one Literal at the '-'.
package siddhiql
