package window

import (
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
)

// externalTimeBatchWindow is externalTimeBatch(attr, t[, start, timeout, replace])
// (ExternalTimeBatchWindowProcessor): tumbling on an event-time attribute. A batch
// flushes when an event at or after its end arrives; with a timeout, the batch is also
// flushed when timeout ms of the stamped clock pass after the last batch started (or the
// last timeout fired), and if more events of that batch arrive later the whole batch is
// re-sent (old events again as CURRENT) at the next flush, as Siddhi does.
//
// Events whose timestamp is null are dropped: Siddhi would fail on them.
type externalTimeBatchWindow struct {
	attr        int
	t           int64
	hasStart    bool
	startAttr   int // -1 when start.time is a constant
	start       int64
	timeout     int64
	replace     bool
	keepExpired bool // the query emits expired events (Siddhi's storeExpiredEvents)

	started       bool
	startTime     int64
	endTime       int64
	lastScheduled int64
	lastEventTime int64 // Siddhi's lastCurrentEventTime; starts at 0 like a Java long
	flushed       bool
	resetPending  bool
	current       []event
	expired       []event
}

func (e *externalTimeBatchWindow) findEndTime(now int64) int64 {
	elapsed := (now - e.startTime) % e.t
	return now + (e.t - elapsed)
}

func (e *externalTimeBatchWindow) advance(now int64, out sink) {
	if !e.started || e.timeout <= 0 {
		return
	}
	for e.lastScheduled <= now {
		if e.flushed && len(e.current) == 0 {
			// Further timer firings change nothing but the schedule.
			k := (now-e.lastScheduled)/e.timeout + 1
			e.lastScheduled += k * e.timeout
			return
		}
		due := e.lastScheduled
		if !e.flushed {
			e.flush(e.lastEventTime, true, out)
			e.flushed = true
		} else {
			e.appendOut(e.lastEventTime, true, out)
		}
		e.lastScheduled = due + e.timeout
	}
}

func (e *externalTimeBatchWindow) add(now int64, rows []expr.Row, out sink) {
	var live []expr.Row
	for _, r := range rows {
		if !r[e.attr].IsNull() {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	live = cloneRows(live)
	if !e.started {
		e.started = true
		first := live[0]
		switch {
		case e.hasStart && e.startAttr < 0:
			e.startTime = e.start
			e.endTime = e.findEndTime(first[e.attr].I)
		case e.hasStart:
			e.startTime = first[e.attr].I
			if v := first[e.startAttr]; !v.IsNull() {
				e.startTime = v.I
			}
			e.endTime = e.startTime + e.t
		default:
			e.startTime = first[e.attr].I
			e.endTime = e.startTime + e.t
		}
		if e.timeout > 0 {
			e.lastScheduled = now + e.timeout
		}
	}
	for _, r := range live {
		ts := r[e.attr].I
		if e.lastEventTime < ts {
			e.lastEventTime = ts
		}
		if ts < e.endTime {
			e.appendEvent(now, r)
			continue
		}
		if e.flushed {
			e.appendOut(e.lastEventTime, false, out)
			e.flushed = false
		} else {
			e.flush(e.lastEventTime, false, out)
		}
		e.endTime = e.findEndTime(e.lastEventTime)
		e.appendEvent(now, r)
		if e.timeout > 0 {
			e.lastScheduled = now + e.timeout
		}
	}
}

func (e *externalTimeBatchWindow) appendEvent(now int64, r expr.Row) {
	if e.replace {
		r[e.attr] = expr.Long(e.endTime) // r is the window's own copy
	}
	e.current = append(e.current, event{time: now, row: r})
	e.resetPending = true
}

// flush is Siddhi's flushToOutputChunk: expired events of the previous batch (stamped
// at), a reset, then the current batch.
func (e *externalTimeBatchWindow) flush(at int64, preserve bool, out sink) {
	var items []item
	if e.keepExpired {
		items = append(items, asItems(e.expired, itExpired, at, false)...)
	}
	e.expired = nil
	if len(e.current) > 0 {
		items = append(items, item{kind: itReset, time: at})
		e.resetPending = false
		if preserve || e.keepExpired {
			e.expired = append([]event(nil), e.current...)
		}
		items = append(items, asItems(e.current, itCurrent, 0, true)...)
	}
	e.current = nil
	if len(items) > 0 {
		out(items, true)
	}
}

// appendOut is Siddhi's appendToOutputChunk: the batch flushed early by a timeout grew,
// so its old events are expired (when wanted), the aggregates reset, and the old and new
// events sent again as CURRENT.
func (e *externalTimeBatchWindow) appendOut(at int64, preserve bool, out sink) {
	if len(e.current) == 0 {
		return
	}
	var items []item
	if e.keepExpired {
		items = append(items, asItems(e.expired, itExpired, at, false)...)
	}
	items = append(items, item{kind: itReset, time: at})
	items = append(items, asItems(e.expired, itCurrent, 0, true)...)
	if preserve || e.keepExpired {
		e.expired = append(e.expired, e.current...)
	}
	items = append(items, asItems(e.current, itCurrent, 0, true)...)
	e.current = nil
	out(items, true)
}

func (e *externalTimeBatchWindow) encode(w *wire.Writer) {
	w.Bool(e.started)
	w.Varint(e.startTime)
	w.Varint(e.endTime)
	w.Varint(e.lastScheduled)
	w.Varint(e.lastEventTime)
	w.Bool(e.flushed)
	w.Bool(e.resetPending)
	encodeEvents(w, e.current)
	encodeEvents(w, e.expired)
}

func (e *externalTimeBatchWindow) decode(r *wire.Reader, width int) {
	e.started = r.Bool()
	e.startTime = r.Varint()
	e.endTime = r.Varint()
	e.lastScheduled = r.Varint()
	e.lastEventTime = r.Varint()
	e.flushed = r.Bool()
	e.resetPending = r.Bool()
	e.current = decodeEvents(r, width)
	e.expired = decodeEvents(r, width)
}
