package check

import (
	"fmt"
	"maps"
	"slices"
)

// Alerts checks the outputs that left the cluster. The HTTP sink of the alert stream must
// deliver every acknowledged event with V >= AlertMin, nothing that was not written (or
// whose ingest failed), and the same body every time it delivers one ID. Each subscriber
// of the windowed stream must have seen the retained outputs, with identical bodies,
// without a gap between the first and the last one it saw, and in order on each
// connection.
func Alerts(h *History) Verdict {
	h = orEmpty(h)
	ws := writes(h)
	ids, groups := byID(h.Alerts)
	problems := bodyProblems("", ids, groups)
	expected, missing := missingAlerts(ws, h.AlertMin, ids, groups)
	problems = append(problems, missing...)
	problems = append(problems, phantomAlerts(ws, h.AlertMin, ids, groups)...)

	retained, subProblems := subscriberProblems(h.Subscribed, h.Retained)
	problems = append(problems, subProblems...)

	subDeliveries := 0
	for _, s := range h.Subscribed {
		subDeliveries += len(s)
	}
	return verdict("alerts",
		"every acknowledged alert event is delivered, nothing else is, and every delivery of one output ID has the same body; subscribers see the retained outputs without gaps, in order",
		problems, map[string]string{
			"deliveries":            itoa(len(h.Alerts)),
			"distinct ids":          itoa(len(ids)),
			"duplicate deliveries":  itoa(len(h.Alerts) - len(ids)),
			"alerts expected":       itoa(expected),
			"subscribers":           itoa(len(h.Subscribed)),
			"subscriber deliveries": itoa(subDeliveries),
			"retained":              itoa(retained),
		})
}

// deliveries is every delivery of one output ID.
type deliveries struct {
	first  Output
	n      int
	bodies []string // distinct, in arrival order
}

// byID groups outputs by ID; the IDs come back in output order.
func byID(outs []Output) ([]string, map[string]*deliveries) {
	groups := map[string]*deliveries{}
	for _, o := range outs {
		d := groups[o.ID]
		if d == nil {
			d = &deliveries{first: o}
			groups[o.ID] = d
		}
		d.n++
		if !slices.Contains(d.bodies, o.Body) {
			d.bodies = append(d.bodies, o.Body)
		}
	}
	return slices.SortedFunc(maps.Keys(groups), compareIDStrings), groups
}

// bodyProblems names each ID delivered with more than one body; who prefixes the
// problem ("subscriber 2: ").
func bodyProblems(who string, ids []string, groups map[string]*deliveries) []string {
	var problems []string
	for _, id := range ids {
		d := groups[id]
		if len(d.bodies) < 2 {
			continue
		}
		quoted := make([]string, len(d.bodies))
		for i, b := range d.bodies {
			quoted[i] = quote(b)
		}
		times := "twice"
		if d.n > 2 {
			times = fmt.Sprintf("%d times", d.n)
		}
		problems = append(problems, fmt.Sprintf("%soutput %s delivered %s with different bodies: %s",
			who, id, times, listIDs(quoted)))
	}
	return problems
}

// missingAlerts names each event of an acknowledged ingest with V >= min that no
// delivered alert carries; it also counts the events that should have been delivered.
func missingAlerts(ws []write, minV int64, ids []string, groups map[string]*deliveries) (int, []string) {
	delivered := map[eventKey]bool{}
	for _, id := range ids {
		delivered[keyOf(groups[id].first.Data)] = true
	}
	expected := 0
	var problems []string
	for _, w := range ws {
		if w.status != OK {
			continue
		}
		for _, e := range w.events {
			if e.V < minV {
				continue
			}
			expected++
			if !delivered[keyOf(e)] {
				problems = append(problems, fmt.Sprintf("alert missing for acknowledged event %s of key %s (ts %d, v %d)",
					keyOf(e), e.Key, e.TS, e.V))
			}
		}
	}
	return expected, problems
}

// phantomAlerts names each delivered alert that matches no written event: none with its
// (producer, seq, i), one whose ingest failed, one with a different key, ts or v, or one
// with V below the alert minimum.
func phantomAlerts(ws []write, minV int64, ids []string, groups map[string]*deliveries) []string {
	byPS := map[eventKey]*write{}
	for i := range ws {
		if ws[i].producer != "" {
			byPS[eventKey{ws[i].producer, ws[i].seq, 0}] = &ws[i]
		}
	}
	var problems []string
	for _, id := range ids {
		d := groups[id].first.Data
		k := keyOf(d)
		w := byPS[eventKey{d.Producer, d.Seq, 0}]
		var why string
		switch e, found := eventOf(w, d.I); {
		case w == nil:
			why = fmt.Sprintf("event %s was never written", k)
		case w.status == Fail:
			why = fmt.Sprintf("event %s belongs to an ingest that failed", k)
		case !found:
			why = fmt.Sprintf("ingest (%s, seq %d) has no event #%d", d.Producer, d.Seq, d.I)
		case e.Key != d.Key || e.TS != d.TS || e.V != d.V:
			why = fmt.Sprintf("event %s was written with key %s ts %d v %d, but the alert has key %s ts %d v %d",
				k, e.Key, e.TS, e.V, d.Key, d.TS, d.V)
		case d.V < minV:
			why = fmt.Sprintf("event %s has v %d, below the alert minimum %d", k, d.V, minV)
		default:
			continue
		}
		problems = append(problems, fmt.Sprintf("phantom alert %s: %s", id, why))
	}
	return problems
}

// eventOf finds the i-th event of a write.
func eventOf(w *write, i int64) (Event, bool) {
	if w == nil {
		return Event{}, false
	}
	for _, e := range w.events {
		if e.I == i {
			return e, true
		}
	}
	return Event{}, false
}
