package partition

import (
	"fmt"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// CheckApp reports whether app's queries and aggregations give the same results however
// their input is spread over groups partition groups. With more than one group it rejects
// a query with a window or running aggregates over a roundRobin stream; over a partitioned
// stream, a window whose contents depend on other keys' events (anything but time(t) and
// timeBatch(t, startTime)) and aggregates not grouped by the partition key; and a query or
// aggregation over a broadcast stream (see the package documentation). Streams not defined in app.Streams
// (outputs of queries) carry no routing and are accepted. With groups <= 1 every app is
// accepted.
//
// The error, if any, is a *siddhiql.Error at the offending query or aggregation, the first
// one in the text.
func CheckApp(app *siddhiql.App, groups int) error {
	if app == nil || groups <= 1 {
		return nil
	}
	streams := make(map[string]*siddhiql.StreamDef, len(app.Streams))
	for _, s := range app.Streams {
		streams[s.Name] = s
	}
	var first *siddhiql.Error
	report := func(pos siddhiql.Pos, format string, args ...any) {
		if first == nil || before(pos, first.Pos) {
			first = &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
		}
	}
	for _, a := range app.Aggregations {
		s := streams[a.From]
		if s == nil || s.Routing.Strategy != siddhiql.Broadcast || a.ReadOnly { // a read-only one aggregates nothing
			continue
		}
		report(a.Pos, "aggregation %s reads stream %s, which is routed broadcast: with %d groups every group would aggregate each event, so every count and sum would come out %d times too large. Route %s with strategy='partitioned' (@distribution(strategy='partitioned', partitionKey='%s')) or strategy='roundRobin' instead",
			a.Name, s.Name, groups, groups, s.Name, suggestKey(s, a.GroupBy))
	}
	checkTables(app, groups, report)
	checkStreamFuncs(app, groups, report) // check_streamfunc.go
	for i, q := range app.Queries {
		s := streams[q.From]
		if s == nil {
			continue
		}
		name := queryName(i, q)
		switch s.Routing.Strategy {
		case siddhiql.RoundRobin:
			if q.Window == nil {
				if hasAggregate(q) {
					report(q.Pos, "%s keeps running aggregates over stream %s, which is routed roundRobin: with %d groups each group would aggregate an arbitrary part of the stream, so its outputs would depend on which group an event happened to reach. Declare @distribution(strategy='partitioned', partitionKey='%s') on %s",
						name, s.Name, groups, suggestKey(s, q.GroupBy), s.Name)
				}
				continue
			}
			report(q.Pos, "%s keeps a window over stream %s, which is routed roundRobin: with %d groups each group would see an arbitrary part of the stream, so the window's contents would depend on which group an event happened to reach. Declare @distribution(strategy='partitioned', partitionKey='%s') on %s",
				name, s.Name, groups, suggestKey(s, q.GroupBy), s.Name)
		case siddhiql.Partitioned:
			if q.Window != nil && !keyIndependentWindow(q.Window) {
				report(q.Pos, "%s keeps a %s window over stream %s, which is partitioned by %s: that window's contents depend on the events of every key (%s), and with %d groups each group sees only its own keys' events, so its outputs would depend on which keys share a group. Use window.time(t) or window.timeBatch(t, startTime), which behave the same for each key wherever it lives, or run the app with one group",
					name, q.Window.Name, s.Name, s.Routing.PartitionKey, windowWhy(q.Window), groups)
				continue
			}
			if hasAggregate(q) && !groupsBy(q, s) {
				report(q.Pos, "%s aggregates over stream %s, which is partitioned by %s, without grouping by %s: with %d groups each group would aggregate only its own keys' events. Add %s to the group by",
					name, s.Name, s.Routing.PartitionKey, s.Routing.PartitionKey, groups, s.Routing.PartitionKey)
			}
		case siddhiql.Broadcast:
			instead := "strategy='partitioned' (@distribution(strategy='partitioned', partitionKey='" + suggestKey(s, q.GroupBy) + "'))"
			if q.Window == nil {
				instead += " or strategy='roundRobin'"
			}
			report(q.Pos, "%s reads stream %s, which is routed broadcast: with %d groups every group would process each event, so the query's output would be emitted %d times and anything counted from it multiplied by %d. Route %s with %s instead",
				name, s.Name, groups, groups, groups, s.Name, instead)
		}
	}
	checkRatesTriggersPartitions(app, streams, groups, report) // check_stream.go
	if first == nil {
		return nil
	}
	return first
}

// keyIndependentWindow reports whether a window treats each key as if it were alone: a
// sliding time window (an event lives for t after it arrived), or a time batch aligned to a
// fixed start time. Count windows, batches that start at the first event and event-time
// windows depend on the events of other keys.
func keyIndependentWindow(w *siddhiql.Window) bool {
	switch w.Name {
	case "time":
		return true
	case "timeBatch":
		return len(w.Args) >= 2
	}
	return false
}

// windowWhy says, for messages, why a window depends on other keys' events.
func windowWhy(w *siddhiql.Window) string {
	switch w.Name {
	case "length", "lengthBatch":
		return "it holds the last n events of the stream, whatever their key"
	case "timeBatch":
		return "without a start time its batches start at the first event the group sees"
	}
	return "it moves forward only when events of any key arrive"
}

// groupsBy reports whether q groups by s's partition key.
func groupsBy(q *siddhiql.Query, s *siddhiql.StreamDef) bool {
	for _, v := range q.GroupBy {
		if v.Name == s.Routing.PartitionKey && (v.Stream == "" || v.Stream == s.Name) {
			return true
		}
	}
	return false
}

// hasAggregate reports whether q's select or having calls an aggregate function.
func hasAggregate(q *siddhiql.Query) bool {
	var walk func(e siddhiql.Expr) bool
	walk = func(e siddhiql.Expr) bool {
		switch n := e.(type) {
		case *siddhiql.Call:
			if expr.IsAggregate(n) {
				return true
			}
			for _, a := range n.Args {
				if walk(a) {
					return true
				}
			}
		case *siddhiql.Binary:
			return walk(n.L) || walk(n.R)
		case *siddhiql.Unary:
			return walk(n.X)
		case *siddhiql.IsNull:
			return walk(n.X)
		}
		return false
	}
	for _, o := range q.Select {
		if walk(o.Expr) {
			return true
		}
	}
	return q.Having != nil && walk(q.Having)
}

// queryName names the i-th query (0-based) for messages: "query 2 (bigTrades)", or
// "query 2" when it has no @info name.
func queryName(i int, q *siddhiql.Query) string {
	if q.Name != "" {
		return fmt.Sprintf("query %d (%s)", i+1, q.Name)
	}
	return fmt.Sprintf("query %d", i+1)
}

// suggestKey proposes a partition key for stream s: the first group-by attribute that
// belongs to s, or "..." when there is none.
func suggestKey(s *siddhiql.StreamDef, groupBy []*siddhiql.Variable) string {
	for _, v := range groupBy {
		if v.Stream != "" && v.Stream != s.Name {
			continue
		}
		for _, a := range s.Attributes {
			if a.Name == v.Name {
				return a.Name
			}
		}
	}
	return "..."
}

func before(a, b siddhiql.Pos) bool {
	return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
}
