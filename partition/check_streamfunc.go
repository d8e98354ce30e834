package partition

import "github.com/tally-db/tally/siddhiql"

// checkStreamFuncs refuses, with several groups, a query with a stream function: the
// Markov matrix of #markov:markovChain is learnt from the events of every id, so each group
// would learn its own from its own keys' events and answer differently than one group.
func checkStreamFuncs(app *siddhiql.App, groups int, report func(siddhiql.Pos, string, ...any)) {
	for i, q := range app.Queries {
		if q.StreamFunc == nil {
			continue
		}
		report(q.StreamFunc.Pos, "%s uses #%s, whose Markov matrix is learnt from the events of every id: with %d groups each group would learn its own from the ids it holds, so the probabilities would depend on which ids share a group. Run the app with one group",
			queryName(i, q), q.StreamFunc.Name, groups)
	}
}
