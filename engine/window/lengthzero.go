package window

import (
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// lengthBatchArg is lengthBatch's window.length: an int constant, zero allowed (every event
// is then a batch of its own, as in Siddhi).
func lengthBatchArg(e siddhiql.Expr, fields *expr.Fields, win string) (int64, error) {
	v, err := constArg(e, fields, win, "window.length")
	if err != nil {
		return 0, err
	}
	if v.T != siddhiql.TypeInt {
		return 0, errAt(e.Position(), "window %s: window.length must be an int constant, got %s", win, v.T)
	}
	if v.I < 0 {
		return 0, errAt(e.Position(), "window %s: window.length must not be negative, got %d", win, v.I)
	}
	return v.I, nil
}

// passThrough is lengthBatch(0): each event is its own batch, emitted as it arrives, then
// (when the query emits expired events) expired at once, then the aggregates reset.
func (l *lengthBatchWindow) passThrough(now int64, rows []expr.Row, out sink) {
	for _, r := range rows {
		items := []item{{kind: itCurrent, time: now, row: r}}
		if l.keepExpired {
			items = append(items, item{kind: itExpired, time: now, row: r})
		}
		items = append(items, item{kind: itReset, time: now})
		out(items, true)
	}
}
