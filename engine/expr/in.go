package expr

import "github.com/tally-db/tally/siddhiql"

// InScope is a Scope that can also compile `cond in Table` (table lookups are resolved by
// the engine, which knows the app's tables).
type InScope interface {
	Scope
	In(n *siddhiql.In) (*Compiled, error)
}

func compileIn(n *siddhiql.In, scope Scope) (*Compiled, error) {
	if s, ok := scope.(InScope); ok {
		return s.In(n)
	}
	return nil, Errorf(n, "'in %s' (a table lookup) is not supported here: only in a query's filter, select and having", n.Table)
}
