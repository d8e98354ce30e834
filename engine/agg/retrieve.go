package agg

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// Plan is a store query against one aggregation, checked and with its constants resolved:
// which table (Per) and which bucket starts [Start, End) it reads. The caller collects the
// matching rows from every source (in-memory states of several shards, the shared store)
// and calls Run.
type Plan struct {
	Def   *Def
	Per   siddhiql.Duration
	Start int64
	End   int64

	// base is the scope of the merged aggregation row: AGG_TIMESTAMP, then Def.Outputs,
	// then group-by columns not among the outputs.
	base    []siddhiql.Attribute
	on      expr.Eval
	sel     *selector
	columns []Column
}

// Result is a store query's answer: column names and types, and rows in select order.
type Result struct {
	Columns []Column
	Rows    [][]expr.Value
}

// Prepare checks q against def and resolves `within` and `per`.
func Prepare(def *Def, q *siddhiql.StoreQuery) (*Plan, error) {
	p := &Plan{Def: def}
	if q.Per == nil {
		return nil, &siddhiql.Error{Pos: q.Pos, Msg: "store query on an aggregation needs 'per'"}
	}
	if q.WithinStart == nil {
		return nil, &siddhiql.Error{Pos: q.Pos, Msg: "store query on an aggregation needs 'within'"}
	}
	perVal, err := constant(q.Per)
	if err != nil {
		return nil, err
	}
	if perVal.T != siddhiql.TypeString {
		return nil, expr.Errorf(q.Per, "per must be a string such as \"hours\", got %s", perVal.T)
	}
	per, ok := siddhiql.ParseDuration(perVal.S)
	if !ok {
		return nil, expr.Errorf(q.Per, "per %q is not a duration: use seconds, minutes, hours, days, months or years", perVal.S)
	}
	if !def.HasDuration(per) {
		return nil, expr.Errorf(q.Per, "%s does not contain %s duration", def.Name, per)
	}
	p.Per = per
	if p.Start, p.End, err = within(q); err != nil {
		return nil, err
	}

	p.base = append(p.base, siddhiql.Attribute{Name: "AGG_TIMESTAMP", Type: siddhiql.TypeLong})
	for _, o := range def.Outputs {
		p.base = append(p.base, siddhiql.Attribute{Name: o.Name, Type: o.Type})
	}
	for _, g := range def.GroupBy {
		if !slices.ContainsFunc(p.base, func(a siddhiql.Attribute) bool { return a.Name == g.Name }) {
			p.base = append(p.base, siddhiql.Attribute{Name: g.Name, Type: g.Type})
		}
	}
	fields := &expr.Fields{Stream: def.Name, Attrs: p.base}
	if q.On != nil {
		c, err := expr.Compile(q.On, fields)
		if err != nil {
			return nil, err
		}
		if c.Type != siddhiql.TypeBool {
			return nil, expr.Errorf(q.On, "on condition must be a bool, got %s", c.Type)
		}
		p.on = c.Eval
	}
	items := q.Select
	if q.SelectAll {
		items = nil
		for _, a := range p.base[:1+len(def.Outputs)] {
			items = append(items, siddhiql.OutputAttr{Pos: q.Pos, Expr: &siddhiql.Variable{Pos: q.Pos, Name: a.Name}})
		}
	}
	if p.sel, err = newSelector(fields, items, q); err != nil {
		return nil, err
	}
	p.columns = p.sel.columns
	return p, nil
}

// Columns are the names and types of the answer's columns.
func (p *Plan) Columns() []Column { return p.columns }

// Bucket is the time a row of table Per is judged by: its event bucket in event-time mode,
// else its arrival bucket.
func (p *Plan) Bucket(r *Row) int64 {
	if p.Def.EventTime {
		return r.EventTimestamp
	}
	return r.AggTimestamp
}

// Run merges rows of table Per from several sources (shards, arrival buckets, the store and
// memory) and answers the query. Rows outside [Start, End) are skipped, so sources may pass
// more than needed. Source order decides nothing but the order floats are summed in.
func (p *Plan) Run(sources ...[]*Row) (*Result, error) {
	merged := map[mkey]*merge{}
	var order []mkey
	for _, src := range sources {
		for _, r := range src {
			t := p.Bucket(r)
			if t < p.Start || t >= p.End {
				continue
			}
			k := mkey{t, r.key}
			m := merged[k]
			if m == nil {
				m = newMerge(p.Def, r)
				merged[k] = m
				order = append(order, k)
			}
			m.add(p.Def, r)
		}
	}
	sortMKeys(order)
	rows := make([]expr.Row, 0, len(order))
	for _, k := range order {
		row := merged[k].output(p, k.t)
		if p.on != nil && !p.on(row).Truth() {
			continue
		}
		rows = append(rows, row)
	}
	out, err := p.sel.run(rows)
	if err != nil {
		return nil, err
	}
	return &Result{Columns: p.columns, Rows: out}, nil
}

// merge accumulates rows with the same bucket and group, across shards and arrival buckets.
type merge struct {
	group     []expr.Value
	latest    []expr.Value
	latestTS  int64
	latestArr int64
	bases     []expr.Value
	sets      []Set
	seen      bool
}

func newMerge(d *Def, r *Row) *merge {
	m := &merge{group: r.Group, bases: make([]expr.Value, len(d.Bases))}
	for i, b := range d.Bases {
		if b.Kind == BaseSum || b.Kind == BaseCount {
			m.bases[i] = expr.Value{T: b.Type}
		}
		if b.Kind == BaseSet {
			if m.sets == nil {
				m.sets = make([]Set, len(d.Bases))
			}
			m.sets[i] = Set{}
		}
	}
	return m
}

func (m *merge) add(d *Def, r *Row) {
	for i, b := range d.Bases {
		switch b.Kind {
		case BaseSum, BaseCount, BaseMin, BaseMax:
			mergeBase(b.Kind, &m.bases[i], r.Bases[i])
		case BaseSet:
			if r.Sets != nil {
				maps.Copy(m.sets[i], r.Sets[i])
			}
		}
	}
	if len(d.Latest) > 0 {
		if !m.seen || r.LastEventTimestamp > m.latestTS || (r.LastEventTimestamp == m.latestTS && r.AggTimestamp >= m.latestArr) {
			m.latest, m.latestTS, m.latestArr = r.Latest, r.LastEventTimestamp, r.AggTimestamp
		}
	}
	m.seen = true
}

// output is the merged row in the plan's base scope.
func (m *merge) output(p *Plan, t int64) expr.Row {
	d := p.Def
	row := make(expr.Row, 0, len(p.base))
	row = append(row, expr.Long(t))
	for _, o := range d.Outputs {
		var v expr.Value
		switch o.Kind {
		case OutGroup:
			v = m.group[o.Index]
		case OutLatest:
			if m.latest != nil {
				v = m.latest[o.Index]
			}
		case OutSum, OutCount, OutMin, OutMax:
			v = m.bases[o.Index]
		case OutAvg:
			if c := m.bases[o.Count].I; c != 0 {
				v = expr.Double(m.bases[o.Index].AsFloat() / float64(c))
			}
		case OutDistinct:
			v = expr.Long(int64(len(m.sets[o.Index])))
		}
		row = append(row, v)
	}
	for _, a := range p.base[len(row):] {
		for i, g := range d.GroupBy {
			if g.Name == a.Name {
				row = append(row, m.group[i])
			}
		}
	}
	return row
}

// constant evaluates an expression that must not read any attribute.
func constant(e siddhiql.Expr) (expr.Value, error) {
	c, err := expr.Compile(e, &expr.Fields{Stream: "constant"})
	if err != nil {
		return expr.Null, err
	}
	if !c.Const {
		return expr.Null, expr.Errorf(e, "must be a constant")
	}
	return c.Eval(nil), nil
}

// within resolves the bounds of `within`: two values (longs or time strings) with
// start < end, or one time string with ** wildcards.
func within(q *siddhiql.StoreQuery) (int64, int64, error) {
	sv, err := constant(q.WithinStart)
	if err != nil {
		return 0, 0, err
	}
	if q.WithinEnd == nil {
		if sv.T != siddhiql.TypeString {
			return 0, 0, expr.Errorf(q.WithinStart, "a single within value must be a time pattern string such as \"2014-02-15 **:**:**\", got %s", sv.T)
		}
		s, e, err := WithinPattern(sv.S)
		if err != nil {
			return 0, 0, expr.Errorf(q.WithinStart, "%v", err)
		}
		return s, e, nil
	}
	ev, err := constant(q.WithinEnd)
	if err != nil {
		return 0, 0, err
	}
	start, err := withinValue(q.WithinStart, sv)
	if err != nil {
		return 0, 0, err
	}
	end, err := withinValue(q.WithinEnd, ev)
	if err != nil {
		return 0, 0, err
	}
	if start >= end {
		return 0, 0, expr.Errorf(q.WithinStart, "within start %s must be before end %s", FormatMillis(start), FormatMillis(end))
	}
	return start, end, nil
}

func withinValue(e siddhiql.Expr, v expr.Value) (int64, error) {
	switch v.T {
	case siddhiql.TypeInt, siddhiql.TypeLong:
		return v.I, nil
	case siddhiql.TypeString:
		t, err := ParseTimestamp(v.S)
		if err != nil {
			return 0, expr.Errorf(e, "within: %v", err)
		}
		return t, nil
	}
	return 0, expr.Errorf(e, "within value must be a long (epoch ms) or a time string, got %s", v.T)
}

// WithinPattern resolves Siddhi's one-value within: "yyyy-MM-dd HH:mm:ss[ ±HH:MM]" where
// trailing fields may be ** wildcards. A full time covers one second; "mm:**" a minute with
// ss wild, "HH:**:**" an hour, "**:**:**" a day, "yyyy-MM-** **:**:**" a calendar month and
// "yyyy-**-** **:**:**" a calendar year, in the pattern's own offset (GMT without one).
func WithinPattern(s string) (int64, int64, error) {
	if len(s) != 19 && len(s) != 26 {
		return 0, 0, fmt.Errorf("within pattern %q must be yyyy-MM-dd HH:mm:ss or yyyy-MM-dd HH:mm:ss ±HH:MM (with ** wildcards)", s)
	}
	// Field order from the finest: ss, mm, HH, dd, MM. A wildcard field makes every finer
	// field a wildcard too.
	fields := []struct {
		at   int
		zero string
	}{{17, "00"}, {14, "00"}, {11, "00"}, {8, "01"}, {5, "01"}}
	b := []byte(s)
	wild := 0
	for i, f := range fields {
		if s[f.at:f.at+2] == "**" {
			if wild != i {
				return 0, 0, fmt.Errorf("within pattern %q: only the trailing fields may be **", s)
			}
			wild++
			copy(b[f.at:], f.zero)
		}
	}
	start, err := ParseTimestamp(string(b))
	if err != nil {
		return 0, 0, fmt.Errorf("within pattern: %w", err)
	}
	t := time.UnixMilli(start).UTC()
	if len(s) == 26 {
		pt, _ := time.Parse("2006-01-02 15:04:05 -07:00", string(b)) // parsed above
		t = pt
	}
	var end time.Time
	switch wild {
	case 0:
		end = t.Add(time.Second)
	case 1:
		end = t.Add(time.Minute)
	case 2:
		end = t.Add(time.Hour)
	case 3:
		end = t.AddDate(0, 0, 1)
	case 4:
		end = t.AddDate(0, 1, 0)
	default:
		end = t.AddDate(1, 0, 0)
	}
	return start, end.UnixMilli(), nil
}

// mkey is a merged row's identity: its bucket time and group key.
type mkey struct {
	t   int64
	key string
}

// sortMKeys orders merged rows by bucket time, then group key.
func sortMKeys(order []mkey) {
	slices.SortFunc(order, func(a, b mkey) int {
		if a.t != b.t {
			return cmpInt(a.t, b.t)
		}
		return strings.Compare(a.key, b.key)
	})
}
