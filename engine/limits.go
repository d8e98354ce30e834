package engine

import (
	"fmt"

	"github.com/tally-db/tally/engine/expr"
)

// CheckLimits checks events for stream against what the engine takes but will not be asked
// to hold: an event time outside years 0001 to 9999 for an event-time aggregation (an error
// wrapping ErrBadEvent that names the event and the attribute), and more than maxKeys
// distinct group keys in an aggregation (agg.ErrTooManyKeys; maxKeys <= 0 means no limit).
// It checks the aggregations that read the stream directly. It is a gate before the log,
// not part of Apply: entries already in the log apply as they always did.
func (e *Engine) CheckLimits(stream string, events []expr.Row, maxKeys int) error {
	a, local, err := e.lookup(stream)
	if err != nil {
		return err
	}
	s := a.streams[local]
	for _, st := range s.aggs {
		if i, ms, found := st.TimeOutOfRange(events); found {
			d := st.Def()
			return fmt.Errorf("%w: event %d of stream %s: attribute %s (the event time of aggregation %s) is %d ms, outside years 0001 to 9999",
				ErrBadEvent, i, stream, s.def.Attributes[d.TimeAttr].Name, d.Name, ms)
		}
		if err := st.CheckKeys(events, maxKeys); err != nil {
			return fmt.Errorf("engine: stream %s: %w", stream, err)
		}
	}
	return nil
}
