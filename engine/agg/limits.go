package agg

import (
	"errors"
	"fmt"

	"github.com/tally-db/tally/engine/expr"
)

// ErrTooManyKeys is CheckKeys' error: the events would add a group key to an aggregation
// that already holds its limit of them. It is a capacity limit, not bad input.
var ErrTooManyKeys = errors.New("aggregation holds too many group keys")

// Keys is the number of distinct group keys the aggregation holds in memory.
func (s *State) Keys() int { return len(s.groups) }

// CheckKeys reports an error wrapping ErrTooManyKeys when adding events would make the
// aggregation hold more than max distinct group keys (max <= 0: no limit). It changes
// nothing (it may run under a read lock, concurrently with other readers); Add itself never
// refuses a key, so replicas that apply an entry admitted by an earlier check stay
// identical whatever their limit.
func (s *State) CheckKeys(events []expr.Row, max int) error {
	if max <= 0 || len(s.groups)+len(events) <= max {
		return nil // even if every event brought a new key, the limit would hold
	}
	var fresh map[string]struct{}
	var b []byte
	for i, ev := range events {
		b = b[:0]
		for _, a := range s.def.groupAttrs {
			b = ev[a].Key(b)
		}
		if _, ok := s.groups[string(b)]; ok {
			continue
		}
		if _, ok := fresh[string(b)]; ok {
			continue
		}
		if len(s.groups)+len(fresh) >= max {
			return fmt.Errorf("%w: %s holds %d group keys, the limit (--max-keys), and event %d would add another",
				ErrTooManyKeys, s.def.Name, len(s.groups), i)
		}
		if fresh == nil {
			fresh = map[string]struct{}{}
		}
		fresh[string(b)] = struct{}{}
	}
	return nil
}

// MinTime and MaxTime bound the event times an aggregation takes, in epoch ms: years 0001
// to 9999 (UTC), the range Siddhi's time strings and the store's columns can show.
const (
	MinTime = -62135596800000 // 0001-01-01 00:00:00.000Z
	MaxTime = 253402300799999 // 9999-12-31 23:59:59.999Z
)

// TimeOutOfRange finds the first event whose event time lies outside MinTime..MaxTime and
// returns its position and time; found is false when there is none. Only event-time
// aggregations read an event's time. Like CheckKeys it is a gate before the log: Add takes
// any time (entries from before the gate must apply as they did).
func (s *State) TimeOutOfRange(events []expr.Row) (event int, ms int64, found bool) {
	if !s.def.EventTime {
		return 0, 0, false
	}
	for i, ev := range events {
		t, err := s.eventTime(ev)
		if err == nil && (t < MinTime || t > MaxTime) {
			return i, t, true
		}
	}
	return 0, 0, false
}
