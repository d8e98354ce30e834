package engine

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// markovChain is the stream function #markov:markovChain(id, state, durationToKeep,
// alertThreshold, notificationsHoldLimit[, train]) of siddhi-execution-markov. It learns a
// Markov matrix of state transitions from the events (all ids share one matrix) and adds
// three attributes to each event:
//
//	lastState              the id's previous state (null when it has none)
//	transitionProbability  transitions lastState→state / transitions from lastState, as
//	                       counted before this event (0 when there is no lastState or no count)
//	notify                 lastState is set and the probability is at most alertThreshold
//
// The first notificationsHoldLimit events of the query only train the matrix: they are not
// passed on. When train is true (a constant, or an expression per event) an event with a
// lastState counts its transition after its own probability is computed. An id's last state
// is forgotten durationToKeep after the id's latest event, on stamped time, with Siddhi's
// rule: the ids are checked in the order they were first seen, and the check stops at the
// first id not yet expired. A matrix from a CSV file (a string fifth argument) is not
// supported.
//
// Unlike Siddhi's, its memory is bounded: past maxIDs ids, those whose last state is already
// forgotten are dropped (seen again, they count as first seen then), and if that is not
// enough the first-seen ids are forgotten; past maxTransitions distinct transitions, new
// ones are not counted (known ones still are).
type markovChain struct {
	maxIDs, maxTransitions int

	pre       expr.Eval // the query's filter before the function; nil when none
	id, state expr.Eval
	train     expr.Eval // nil when trainAll gives the constant
	trainAll  bool
	keep      int64
	threshold float64
	hold      int64

	events int64
	last   map[string]string // id → its last state, for the ids not expired
	order  []string          // every id seen, in first-seen order
	expiry map[string]int64  // id → when its last state expires
	starts map[string]int64  // state → transitions counted from it
	trans  map[[2]string]int64
}

// markovAttrs are the attributes markovChain adds.
var markovAttrs = []siddhiql.Attribute{
	{Name: "lastState", Type: siddhiql.TypeString},
	{Name: "transitionProbability", Type: siddhiql.TypeDouble},
	{Name: "notify", Type: siddhiql.TypeBool},
}

// compileStreamFunc compiles q's stream function over input. It returns the function, the
// stream its output has (input's attributes, then the function's) and the query that reads
// that output: q with the function's filter as its filter.
func compileStreamFunc(q *siddhiql.Query, input *siddhiql.StreamDef, env *expr.Env) (*markovChain, *siddhiql.StreamDef, *siddhiql.Query, error) {
	f := q.StreamFunc
	fail := func(pos siddhiql.Pos, format string, args ...any) (*markovChain, *siddhiql.StreamDef, *siddhiql.Query, error) {
		return nil, nil, nil, &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf("#%s: ", f.Name) + fmt.Sprintf(format, args...)}
	}
	if n := len(f.Args); n != 5 && n != 6 {
		return fail(f.Pos, "takes 5 or 6 arguments (id, state, durationToKeep, alertThreshold, notificationsHoldLimit[, train]); found %d", n)
	}
	fields := &expr.Fields{Stream: input.Name, Attrs: input.Attributes, Env: env}
	m := &markovChain{maxIDs: markovMaxIDs, maxTransitions: markovMaxTransitions, trainAll: true, last: map[string]string{}, expiry: map[string]int64{}, starts: map[string]int64{}, trans: map[[2]string]int64{}}
	for i, dst := range []*expr.Eval{&m.id, &m.state} {
		c, err := expr.Compile(f.Args[i], fields)
		if err != nil {
			return nil, nil, nil, err
		}
		if c.Type != siddhiql.TypeString {
			return fail(f.Args[i].Position(), "the %s must be a string, found %s", []string{"id", "state"}[i], c.Type)
		}
		*dst = c.Eval
	}
	constant := func(i int, what string) (expr.Value, error) {
		c, err := expr.Compile(f.Args[i], fields)
		if err != nil {
			return expr.Null, err
		}
		if !c.Const {
			_, _, _, err := fail(f.Args[i].Position(), "%s must be a constant, found %s", what, siddhiql.FormatExpr(f.Args[i]))
			return expr.Null, err
		}
		return c.Eval(nil), nil
	}
	v, err := constant(2, "durationToKeep")
	if err != nil {
		return nil, nil, nil, err
	}
	if (v.T != siddhiql.TypeInt && v.T != siddhiql.TypeLong) || v.I <= 0 {
		return fail(f.Args[2].Position(), "durationToKeep must be a positive int, long or time constant (60 min), found %s", siddhiql.FormatExpr(f.Args[2]))
	}
	m.keep = v.I
	if v, err = constant(3, "alertThreshold"); err != nil {
		return nil, nil, nil, err
	}
	if v.T != siddhiql.TypeDouble {
		return fail(f.Args[3].Position(), "alertThreshold must be a double constant (0.2), found %s", v.T)
	}
	m.threshold = v.F
	if v, err = constant(4, "notificationsHoldLimit"); err != nil {
		return nil, nil, nil, err
	}
	switch {
	case v.T == siddhiql.TypeString:
		return fail(f.Args[4].Position(), "a Markov matrix from a file is not supported: give notificationsHoldLimit, an int or long, to train the matrix from the events")
	case (v.T != siddhiql.TypeInt && v.T != siddhiql.TypeLong) || v.I < 0:
		return fail(f.Args[4].Position(), "notificationsHoldLimit must be an int or long constant, at least 0, found %s", siddhiql.FormatExpr(f.Args[4]))
	}
	m.hold = v.I
	if len(f.Args) == 6 {
		c, err := expr.Compile(f.Args[5], fields)
		if err != nil {
			return nil, nil, nil, err
		}
		if c.Type != siddhiql.TypeBool {
			return fail(f.Args[5].Position(), "train must be a bool, found %s", c.Type)
		}
		if c.Const {
			m.trainAll = c.Eval(nil).Truth()
		} else {
			m.train = c.Eval
		}
	}
	attrs := slices.Clone(input.Attributes)
	for _, a := range markovAttrs {
		if slices.ContainsFunc(attrs, func(x siddhiql.Attribute) bool { return x.Name == a.Name }) {
			return fail(f.Pos, "stream %s already has an attribute %s, which the function adds", input.Name, a.Name)
		}
		attrs = append(attrs, a)
	}
	out := &siddhiql.StreamDef{Pos: input.Pos, Name: input.Name, Attributes: attrs}
	rest := *q
	rest.StreamFunc, rest.Filter = nil, f.Filter
	if q.Filter != nil {
		pre, err := expr.Compile(q.Filter, fields)
		if err != nil {
			return nil, nil, nil, err
		}
		if pre.Type != siddhiql.TypeBool {
			return fail(q.Filter.Position(), "the filter before the function must be a bool, found %s", pre.Type)
		}
		m.pre = pre.Eval
	}
	return m, out, &rest, nil
}

// markovKey turns a string attribute into a map key; null has its own key.
func markovKey(v expr.Value) string {
	if v.IsNull() {
		return markovNull
	}
	return v.S
}

// markovNull is the key of a null id or state: no string attribute of an event holds it.
const markovNull = "\x00null"

func markovValue(k string) expr.Value {
	if k == markovNull {
		return expr.Null
	}
	return expr.String(k)
}

// process runs events that arrived at now through the function and returns what it passes
// on, each event with the function's attributes added.
func (m *markovChain) process(now int64, events []expr.Row) []expr.Row {
	m.expire(now)
	var out []expr.Row
	for _, ev := range events {
		if m.pre != nil && !m.pre(ev).Truth() {
			continue
		}
		m.events++
		id, st := markovKey(m.id(ev)), markovKey(m.state(ev))
		last, had := m.last[id]
		m.last[id] = st
		if _, seen := m.expiry[id]; !seen {
			m.order = append(m.order, id)
		}
		m.expiry[id] = now + m.keep
		if m.events > m.hold {
			row := make(expr.Row, 0, len(ev)+len(markovAttrs))
			row = append(row, ev...)
			prob := 0.0
			if had {
				if from, t := m.starts[last], m.trans[[2]string{last, st}]; from != 0 && t != 0 {
					prob = float64(t) / float64(from)
				}
				row = append(row, markovValue(last))
			} else {
				row = append(row, expr.Null)
			}
			row = append(row, expr.Double(prob), expr.Bool(had && prob <= m.threshold))
			out = append(out, row)
		}
		train := m.trainAll
		if m.train != nil {
			train = m.train(ev).Truth()
		}
		if train && had {
			k := [2]string{last, st}
			if _, known := m.trans[k]; known || len(m.trans) < m.maxTransitions {
				m.starts[last]++
				m.trans[k]++
			}
		}
		if len(m.order) > m.maxIDs {
			m.shrink()
		}
	}
	return out
}

// Bounds of one markovChain's memory (see markovChain).
const (
	markovMaxIDs         = 100_000
	markovMaxTransitions = 1_000_000
)

// shrink brings the ids back to maxIDs: it drops the forgotten ones, then, if needed, the
// first seen.
func (m *markovChain) shrink() {
	kept := m.order[:0]
	for _, id := range m.order {
		if _, ok := m.last[id]; ok {
			kept = append(kept, id)
		} else {
			delete(m.expiry, id)
		}
	}
	for len(kept) > m.maxIDs {
		delete(m.last, kept[0])
		delete(m.expiry, kept[0])
		kept = kept[1:]
	}
	m.order = slices.Clone(kept)
}

// expire forgets the last state of the ids whose time is up, in first-seen order up to the
// first id that is not.
func (m *markovChain) expire(now int64) {
	for _, id := range m.order {
		if m.expiry[id] > now {
			return
		}
		delete(m.last, id)
	}
}

// encode writes the function's state; maps in sorted key order.
func (m *markovChain) encode(w *wire.Writer) {
	w.Varint(m.events)
	w.Uvarint(uint64(len(m.order)))
	for _, id := range m.order {
		w.String(id)
		w.Varint(m.expiry[id])
		last, ok := m.last[id]
		w.Bool(ok)
		if ok {
			w.String(last)
		}
	}
	w.Uvarint(uint64(len(m.starts)))
	for _, k := range slices.Sorted(maps.Keys(m.starts)) {
		w.String(k)
		w.Varint(m.starts[k])
	}
	keys := slices.SortedFunc(maps.Keys(m.trans), func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.String(k[0])
		w.String(k[1])
		w.Varint(m.trans[k])
	}
}

func (m *markovChain) decode(r *wire.Reader) error {
	m.events = r.Varint()
	n := r.Count(3)
	m.order = m.order[:0]
	clear(m.last)
	clear(m.expiry)
	for range n {
		id := r.String()
		m.order = append(m.order, id)
		m.expiry[id] = r.Varint()
		if r.Bool() {
			m.last[id] = r.String()
		}
	}
	clear(m.starts)
	for range r.Count(2) {
		k := r.String()
		m.starts[k] = r.Varint()
	}
	clear(m.trans)
	for range r.Count(3) {
		a, b := r.String(), r.String()
		m.trans[[2]string{a, b}] = r.Varint()
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("markov:markovChain: %w", err)
	}
	return nil
}

// compileFunc compiles qd's stream function, if any: it returns the function and the query
// and input stream the window and selector compile against (qd and input themselves when
// there is no function).
func (a *App) compileFunc(qd *siddhiql.Query, input *siddhiql.StreamDef) (*markovChain, *siddhiql.Query, *siddhiql.StreamDef, error) {
	if qd.StreamFunc == nil {
		return nil, qd, input, nil
	}
	fn, def, rest, err := compileStreamFunc(qd, input, a.env)
	if err != nil {
		return nil, nil, nil, err
	}
	return fn, rest, def, nil
}
