package expr

import (
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// compileCoordination compiles Siddhi's coordination:isLeader(). Whether a replica leads
// its group is not part of the replicated log, so no deterministic Apply can read it.
// Inside the engine every replica computes as the leader would: isLeader() is true on all
// of them, so queries gated on it (`[isLeader == true]`) run everywhere and their outputs
// are the same on every replica; only the leader delivers sinks, which is what such a gate
// is for in an active-active deployment. ok is false for any other call.
func compileCoordination(c *siddhiql.Call) (*Compiled, bool, error) {
	if !strings.EqualFold(c.Namespace, "coordination") || !strings.EqualFold(c.Name, "isLeader") {
		return nil, false, nil
	}
	if len(c.Args) != 0 {
		return nil, true, Errorf(c, "coordination:isLeader() takes no arguments, got %d", len(c.Args))
	}
	v := Bool(true)
	return &Compiled{Type: siddhiql.TypeBool, Eval: func(Row) Value { return v }}, true, nil
}
