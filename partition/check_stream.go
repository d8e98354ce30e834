package partition

import (
	"github.com/tally-db/tally/siddhiql"
)

// checkRatesTriggersPartitions adds CheckApp's rules for output rate limits, triggers and
// partitions (groups > 1):
//
//   - An output rate limit over a routed stream must give the same outputs whatever keys
//     share a group: `output all every T` (it only delays outputs), or, over a partitioned
//     stream with a group by on the partition key, `first every N events`, `first|last
//     every T` and `snapshot every T` (kept per key; periods end at multiples of T). Counts
//     across keys (`last|all every N events`, any limit without that group by) are refused.
//   - A query reading a trigger is refused: every group fires its own triggers, so its
//     outputs would come once per group.
//   - A partition must partition each defined stream it uses by that stream's partition key
//     (`key of S`, S partitioned by key): then each instance sees all of its key's events,
//     which all live in one group. Range partitions, other attributes and streams it reads
//     without partitioning them are refused. Inside such a partition every query is per key.
func checkRatesTriggersPartitions(app *siddhiql.App, streams map[string]*siddhiql.StreamDef, groups int, report func(siddhiql.Pos, string, ...any)) {
	triggers := map[string]bool{}
	for _, t := range app.Triggers {
		triggers[t.Name] = true
	}
	for i, q := range app.Queries {
		name := queryName(i, q)
		if triggers[q.From] {
			report(q.Pos, "%s reads trigger %s: every one of the %d groups fires its own trigger events, so the query's outputs would come %d times. Run the app with one group",
				name, q.From, groups, groups)
			continue
		}
		s := streams[q.From]
		if q.Rate == nil || s == nil || s.Routing.Strategy == siddhiql.Broadcast || rateKeyIndependent(q, s) {
			continue
		}
		how := "output all every <time>"
		if s.Routing.Strategy == siddhiql.Partitioned {
			how += ", or group by " + s.Routing.PartitionKey + " with output first every <n> events, output first|last|snapshot every <time>"
		}
		report(q.Rate.Pos, "%s limits its output with '%s' over stream %s, which is routed %s: that picks or counts events across keys, and with %d groups each group sees only its own keys' events, so the outputs would depend on which keys share a group. Use %s",
			name, q.Rate, s.Name, s.Routing.Strategy, groups, how)
	}
	for _, p := range app.Partitions {
		partitioned := map[string]bool{}
		for _, w := range p.With {
			s := streams[w.Stream]
			if s == nil {
				continue // the output of a query: carries no routing
			}
			partitioned[w.Stream] = true
			v, ok := w.Value.(*siddhiql.Variable)
			if s.Routing.Strategy == siddhiql.Partitioned && ok && v.Name == s.Routing.PartitionKey && (v.Stream == "" || v.Stream == s.Name) {
				continue
			}
			key := "..."
			if s.Routing.Strategy == siddhiql.Partitioned {
				key = s.Routing.PartitionKey
			}
			report(w.Pos, "partition with (... of %s) does not partition %s by its partition key (it is routed %s): with %d groups a partition instance would see only the events of its key that reached its group. Partition with (%s of %s) and declare @distribution(strategy='partitioned', partitionKey='%s') on %s, or run the app with one group",
				s.Name, s.Name, s.Routing.Strategy, groups, key, s.Name, key, s.Name)
		}
		for _, q := range p.Queries {
			if s := streams[q.From]; s != nil && !partitioned[q.From] {
				report(q.Pos, "a query of the partition at %s reads stream %s, which the partition does not partition: with %d groups its events would reach only the instances of the group they reach. Add %s to 'partition with', or run the app with one group",
					p.Pos, s.Name, groups, s.Name)
			}
			if triggers[q.From] {
				report(q.Pos, "a query of the partition at %s reads trigger %s: every one of the %d groups fires its own trigger events. Run the app with one group",
					p.Pos, q.From, groups)
			}
		}
	}
}

// rateKeyIndependent reports whether q's output rate limit over s gives the same outputs
// however s's keys are spread over groups.
func rateKeyIndependent(q *siddhiql.Query, s *siddhiql.StreamDef) bool {
	r := q.Rate
	if r.Kind == siddhiql.RateAll && r.Millis > 0 {
		return true
	}
	if s.Routing.Strategy != siddhiql.Partitioned || !groupsBy(q, s) {
		return false
	}
	return r.Millis > 0 || r.Kind == siddhiql.RateFirst
}
