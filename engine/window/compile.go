package window

import (
	"fmt"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// Kind says whether an output row comes from an event entering (Current) or leaving
// (Expired) the window.
type Kind uint8

// Output event kinds.
const (
	Current Kind = iota
	Expired
)

func (k Kind) String() string {
	if k == Expired {
		return "EXPIRED"
	}
	return "CURRENT"
}

// Output is one row the query inserts into its output stream. Row holds the values in
// OutputAttrs order; Time is the event's time (its arrival time for CURRENT rows, the
// expiry or flush time for EXPIRED rows).
type Output struct {
	Kind Kind
	Time int64
	Row  expr.Row
}

// Query is a compiled streaming query together with its runtime state (window contents,
// aggregates per group key, clock). It is not safe for concurrent use.
type Query struct {
	nIn      int // input attributes
	outAttrs []siddhiql.Attribute

	filter     expr.Eval // nil when absent
	postFilter expr.Eval // nil when absent
	sel        []expr.Eval
	having     expr.Eval // nil when absent
	groupBy    []int
	aggs       []aggSpec
	hasAgg     bool
	currentOn  bool
	expiredOn  bool

	win window
	lim *limiter  // the output rate limit; nil when the query has none
	env *expr.Env // what functions read besides the row; nil when none

	// state
	clock   int64
	started bool // clock is set
	groups  map[string]*group

	// scratch space, reused from call to call
	passed  []expr.Row   // the events that passed the filter
	keyBuf  []byte       // a group-by key
	full    expr.Row     // the full row of the item being selected
	pend    []pending    // a batch chunk's outputs
	outVals []expr.Value // their values
}

// full row layout while selecting: input attributes, then output attributes, then
// aggregate slots.
func (q *Query) outBase() int { return q.nIn }
func (q *Query) aggBase() int { return q.nIn + len(q.outAttrs) }

// OutputAttrs are the names and types of the query's output stream, in row order.
func (q *Query) OutputAttrs() []siddhiql.Attribute {
	return append([]siddhiql.Attribute(nil), q.outAttrs...)
}

func errAt(pos siddhiql.Pos, format string, args ...any) error {
	return &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Compile checks q against its input stream's attributes and returns a runtime with empty
// state. Every error is a *siddhiql.Error at the offending node: unknown attributes,
// ill-typed filters or having, bad window arguments, bad aggregate calls, unnamed or
// colliding output attributes.
func Compile(q *siddhiql.Query, input *siddhiql.StreamDef) (*Query, error) {
	return CompileWithEnv(q, input, nil, nil)
}

// CompileEnv is Compile for a query whose functions read env (the stamped time, the
// event's time, the GeoIP database). The query sets env.EventTime to each event's time
// before it evaluates the event.
func CompileEnv(q *siddhiql.Query, input *siddhiql.StreamDef, env *expr.Env) (*Query, error) {
	return CompileWithEnv(q, input, nil, env)
}

// CompileWith is Compile with a resolver for `cond in Table` in the query's filters; with
// a nil resolver a table lookup is an error.
func CompileWith(q *siddhiql.Query, input *siddhiql.StreamDef, tables InResolver) (*Query, error) {
	return CompileWithEnv(q, input, tables, nil)
}

// CompileWithEnv is CompileWith for a query whose functions read env (see CompileEnv).
func CompileWithEnv(q *siddhiql.Query, input *siddhiql.StreamDef, tables InResolver, env *expr.Env) (*Query, error) {
	return compileQuery(q, input, tables, nil, env)
}

func compileQuery(q *siddhiql.Query, input *siddhiql.StreamDef, tables InResolver, scope expr.Scope, env *expr.Env) (*Query, error) {
	if input == nil {
		return nil, errAt(q.Pos, "query reads unknown stream %q", q.From)
	}
	if q.From != "" && q.From != input.Name {
		return nil, errAt(q.Pos, "query reads stream %q but was compiled against %q", q.From, input.Name)
	}
	fields := &expr.Fields{Stream: input.Name, Attrs: input.Attributes, Env: env}
	rq := &Query{
		env:       env,
		nIn:       len(input.Attributes),
		currentOn: q.Output != siddhiql.ExpiredEvents,
		// A snapshot sees expired events too, to drop them from its snapshot.
		expiredOn: q.Output != siddhiql.CurrentEvents || (q.Rate != nil && q.Rate.Kind == siddhiql.RateSnapshot),
		groups:    map[string]*group{},
	}
	var err error
	var fscope expr.Scope = fields
	if tables != nil {
		fscope = &inScope{Fields: fields, tables: tables}
	}
	if scope != nil {
		fscope = scope
		if env != nil {
			fscope = expr.WithEnv(scope, env)
		}
	}
	if rq.filter, err = compileCond(q.Filter, fscope, "filter"); err != nil {
		return nil, err
	}
	if rq.win, err = compileWindow(q.Window, fields, rq.expiredOn); err != nil {
		return nil, err
	}
	if rq.postFilter, err = compileCond(q.PostFilter, fscope, "filter"); err != nil {
		return nil, err
	}
	for _, v := range q.GroupBy {
		idx, _, err := fscope.Var(v)
		if err != nil {
			return nil, errAt(v.Pos, "group by: %s", msgOf(err))
		}
		rq.groupBy = append(rq.groupBy, idx)
	}

	// Select list.
	items := q.Select
	if q.SelectAll || len(items) == 0 {
		items = nil
		for _, a := range input.Attributes {
			items = append(items, siddhiql.OutputAttr{Pos: q.Pos, Expr: &siddhiql.Variable{Pos: q.Pos, Name: a.Name}})
		}
	}
	sc := &selectScope{q: rq, fields: fscope, nOut: len(items), qualifiedHaving: scope != nil}
	seen := map[string]bool{}
	for _, it := range items {
		name := it.OutputName()
		if name == "" {
			return nil, errAt(it.Pos, "select expression needs a name: add `as <name>`")
		}
		if seen[name] {
			return nil, errAt(it.Pos, "duplicate output attribute %q", name)
		}
		seen[name] = true
		c, err := expr.Compile(it.Expr, sc)
		if err != nil {
			return nil, err
		}
		if c.Type == siddhiql.TypeInvalid {
			return nil, errAt(it.Pos, "output attribute %q has no type (null constant)", name)
		}
		rq.outAttrs = append(rq.outAttrs, siddhiql.Attribute{Pos: it.Pos, Name: name, Type: c.Type})
		rq.sel = append(rq.sel, c.Eval)
	}
	if q.Having != nil {
		sc.having = true
		c, err := expr.Compile(q.Having, sc)
		if err != nil {
			return nil, err
		}
		if c.Type != siddhiql.TypeBool {
			return nil, errAt(q.Having.Position(), "having needs a bool condition, got %s", c.Type)
		}
		rq.having = c.Eval
	}
	rq.hasAgg = len(rq.aggs) > 0
	if q.Rate != nil {
		if q.Rate.Kind == siddhiql.RateSnapshot && q.Output == siddhiql.ExpiredEvents {
			return nil, errAt(q.Rate.Pos, "a query with 'output snapshot every' inserts its snapshots as current events: use 'insert into' or 'insert all events into', not 'insert expired events'")
		}
		var aggPos []int
		for i, it := range items {
			if c, ok := it.Expr.(*siddhiql.Call); ok && expr.IsAggregate(c) {
				aggPos = append(aggPos, i)
			}
		}
		rq.lim = newLimiter(q.Rate, q.Window != nil, len(q.GroupBy) > 0, aggPos, len(items))
	}
	return rq, nil
}

func msgOf(err error) string {
	if e, ok := err.(*siddhiql.Error); ok {
		return e.Msg
	}
	return err.Error()
}

func compileCond(e siddhiql.Expr, sc expr.Scope, what string) (expr.Eval, error) {
	if e == nil {
		return nil, nil
	}
	c, err := expr.Compile(e, sc)
	if err != nil {
		return nil, err
	}
	if c.Type != siddhiql.TypeBool {
		return nil, errAt(e.Position(), "%s needs a bool condition, got %s", what, c.Type)
	}
	return c.Eval, nil
}

// selectScope resolves select and having expressions over the full row: variables to
// input attributes (select) or output attributes (having), aggregate calls to slots.
type selectScope struct {
	q      *Query
	fields expr.Scope
	nOut   int
	having bool
	// qualifiedHaving lets having read input attributes by qualified name (S.x), as join
	// queries do (`having b.x is null`).
	qualifiedHaving bool
}

func (s *selectScope) Var(v *siddhiql.Variable) (int, siddhiql.Type, error) {
	if !s.having {
		return s.fields.Var(v)
	}
	if v.Stream == "" {
		for i, a := range s.q.outAttrs {
			if a.Name == v.Name {
				return s.q.nIn + i, a.Type, nil
			}
		}
	} else if s.qualifiedHaving {
		return s.fields.Var(v)
	}
	return 0, 0, errAt(v.Pos, "having: unknown attribute %q: having can use the select's output attributes (%s)", v.Name, names(s.q.outAttrs))
}

func names(as []siddhiql.Attribute) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Name)
	}
	return b.String()
}

// FuncEnv gives the select's functions the query's Env.
func (s *selectScope) FuncEnv() *expr.Env { return s.q.env }

func (s *selectScope) Call(c *siddhiql.Call) (int, siddhiql.Type, bool, error) {
	if !expr.IsAggregate(c) {
		return 0, 0, false, nil
	}
	spec, err := compileAgg(c, s.fields)
	if err != nil {
		return 0, 0, true, err
	}
	idx := s.q.nIn + s.nOut + len(s.q.aggs)
	s.q.aggs = append(s.q.aggs, spec)
	return idx, spec.res, true, nil
}

// compileAgg type-checks an aggregate call; its argument reads the input attributes.
func compileAgg(c *siddhiql.Call, fields expr.Scope) (aggSpec, error) {
	fn := strings.ToLower(c.Name)
	spec := aggSpec{}
	switch fn {
	case "count":
		spec.fn = aggCount
		if len(c.Args) > 1 {
			return spec, errAt(c.Pos, "count() takes no argument, got %d", len(c.Args))
		}
		if len(c.Args) == 1 { // Siddhi accepts count(x) as count(); the argument must still be valid
			if _, err := expr.Compile(c.Args[0], fields); err != nil {
				return spec, err
			}
		}
		spec.res = siddhiql.TypeLong
		return spec, nil
	case "sum":
		spec.fn = aggSum
	case "avg":
		spec.fn = aggAvg
	case "min":
		spec.fn = aggMin
	case "max":
		spec.fn = aggMax
	case "distinctcount":
		spec.fn = aggDistinct
	default:
		return spec, errAt(c.Pos, "unknown aggregate function %s()", c.Name)
	}
	if len(c.Args) != 1 {
		return spec, errAt(c.Pos, "%s() takes exactly one argument, got %d", c.Name, len(c.Args))
	}
	arg, err := expr.Compile(c.Args[0], fields)
	if err != nil {
		return spec, err
	}
	spec.arg = arg.Eval
	spec.argType = arg.Type
	if spec.fn == aggDistinct {
		spec.res = siddhiql.TypeLong
		return spec, nil
	}
	if !arg.Type.Numeric() {
		return spec, errAt(c.Args[0].Position(), "%s() needs a numeric argument (int, long, float or double), got %s", c.Name, arg.Type)
	}
	switch spec.fn {
	case aggSum:
		if arg.Type == siddhiql.TypeInt || arg.Type == siddhiql.TypeLong {
			spec.res = siddhiql.TypeLong
		} else {
			spec.res = siddhiql.TypeDouble
		}
	case aggAvg:
		spec.res = siddhiql.TypeDouble
	default:
		spec.res = arg.Type
	}
	return spec, nil
}

// constArg evaluates a constant window argument.
func constArg(e siddhiql.Expr, fields *expr.Fields, win, what string) (expr.Value, error) {
	c, err := expr.Compile(e, fields)
	if err != nil {
		return expr.Null, err
	}
	if _, lit := e.(*siddhiql.Literal); !c.Const || !lit {
		// Siddhi takes only a literal here: an expression of constants (1/2) is refused too.
		return expr.Null, errAt(e.Position(), "window %s: %s must be a constant, found %s", win, what, siddhiql.FormatExpr(e))
	}
	return c.Eval(nil), nil
}

// posIntArg is a positive int (or, when allowLong, int or long) constant.
func posIntArg(e siddhiql.Expr, fields *expr.Fields, win, what string, allowLong bool) (int64, error) {
	v, err := constArg(e, fields, win, what)
	if err != nil {
		return 0, err
	}
	ok := v.T == siddhiql.TypeInt || (allowLong && v.T == siddhiql.TypeLong)
	if !ok {
		want := "an int"
		if allowLong {
			want = "an int, long or time"
		}
		return 0, errAt(e.Position(), "window %s: %s must be %s constant, got %s", win, what, want, v.T)
	}
	if v.I <= 0 {
		return 0, errAt(e.Position(), "window %s: %s must be positive, got %d", win, what, v.I)
	}
	return v.I, nil
}

func boolArg(e siddhiql.Expr, fields *expr.Fields, win, what string) (bool, error) {
	v, err := constArg(e, fields, win, what)
	if err != nil {
		return false, err
	}
	if v.T != siddhiql.TypeBool {
		return false, errAt(e.Position(), "window %s: %s must be a bool constant, got %s", win, what, v.T)
	}
	return v.Truth(), nil
}

// longAttrArg is the index of a long attribute named by e.
func longAttrArg(e siddhiql.Expr, fields *expr.Fields, win, what string) (int, error) {
	v, ok := e.(*siddhiql.Variable)
	if !ok {
		return 0, errAt(e.Position(), "window %s: %s must be a long attribute", win, what)
	}
	idx, t, err := fields.Var(v)
	if err != nil {
		return 0, err
	}
	if t != siddhiql.TypeLong {
		return 0, errAt(e.Position(), "window %s: %s must be a long attribute, but %q is %s", win, what, v.Name, t)
	}
	return idx, nil
}

func argCount(w *siddhiql.Window, min, max int, usage string) error {
	if n := len(w.Args); n < min || n > max {
		return errAt(w.Pos, "window %s takes %s, got %d argument(s)", w.Name, usage, n)
	}
	return nil
}

// compileWindow validates the window's arguments and builds its empty state. keepExpired
// says whether batch windows must keep and emit their expired events.
func compileWindow(w *siddhiql.Window, fields *expr.Fields, keepExpired bool) (window, error) {
	if w == nil {
		return &noWindow{}, nil
	}
	name := strings.ToLower(w.Name)
	switch name {
	case "length":
		if err := argCount(w, 1, 1, "(int window.length)"); err != nil {
			return nil, err
		}
		n, err := posIntArg(w.Args[0], fields, w.Name, "window.length", false)
		if err != nil {
			return nil, err
		}
		return &lengthWindow{n: int(n), evs: newRing(fields.Attrs)}, nil
	case "lengthbatch":
		if err := argCount(w, 1, 2, "(int window.length[, bool stream.current.event])"); err != nil {
			return nil, err
		}
		n, err := lengthBatchArg(w.Args[0], fields, w.Name)
		if err != nil {
			return nil, err
		}
		lw := &lengthBatchWindow{n: int(n), keepExpired: keepExpired}
		if len(w.Args) == 2 {
			if lw.streamCurrent, err = boolArg(w.Args[1], fields, w.Name, "stream.current.event"); err != nil {
				return nil, err
			}
		}
		return lw, nil
	case "time":
		if err := argCount(w, 1, 1, "(int|long|time window.time)"); err != nil {
			return nil, err
		}
		t, err := posIntArg(w.Args[0], fields, w.Name, "window.time", true)
		if err != nil {
			return nil, err
		}
		return &timeWindow{t: t, evs: newRing(fields.Attrs)}, nil
	case "timebatch":
		if err := argCount(w, 1, 3, "(window.time[, start.time][, stream.current.event])"); err != nil {
			return nil, err
		}
		t, err := posIntArg(w.Args[0], fields, w.Name, "window.time", true)
		if err != nil {
			return nil, err
		}
		tw := &timeBatchWindow{t: t, keepExpired: keepExpired}
		if len(w.Args) >= 2 {
			v, err := constArg(w.Args[1], fields, w.Name, "2nd argument")
			if err != nil {
				return nil, err
			}
			switch {
			case v.T == siddhiql.TypeInt || v.T == siddhiql.TypeLong:
				tw.hasStart, tw.start = true, v.I
			case v.T == siddhiql.TypeBool && len(w.Args) == 2:
				tw.streamCurrent = v.Truth()
			default:
				return nil, errAt(w.Args[1].Position(), "window %s: start.time must be an int or long constant (or stream.current.event a bool), got %s", w.Name, v.T)
			}
		}
		if len(w.Args) == 3 {
			if tw.streamCurrent, err = boolArg(w.Args[2], fields, w.Name, "stream.current.event"); err != nil {
				return nil, err
			}
		}
		return tw, nil
	case "externaltime":
		if err := argCount(w, 2, 2, "(long timestamp, int|long|time window.time)"); err != nil {
			return nil, err
		}
		idx, err := longAttrArg(w.Args[0], fields, w.Name, "timestamp")
		if err != nil {
			return nil, err
		}
		t, err := posIntArg(w.Args[1], fields, w.Name, "window.time", true)
		if err != nil {
			return nil, err
		}
		return &externalTimeWindow{attr: idx, t: t, evs: newRing(fields.Attrs)}, nil
	case "externaltimebatch":
		return compileExternalTimeBatch(w, fields, keepExpired)
	}
	return nil, errAt(w.Pos, "unsupported window %q: supported windows are length, lengthBatch, time, timeBatch, externalTime and externalTimeBatch", w.Name)
}

func compileExternalTimeBatch(w *siddhiql.Window, fields *expr.Fields, keepExpired bool) (window, error) {
	if err := argCount(w, 2, 5, "(long timestamp, window.time[, start.time, timeout, replace.with.batchtime])"); err != nil {
		return nil, err
	}
	idx, err := longAttrArg(w.Args[0], fields, w.Name, "timestamp")
	if err != nil {
		return nil, err
	}
	t, err := posIntArg(w.Args[1], fields, w.Name, "window.time", true)
	if err != nil {
		return nil, err
	}
	ew := &externalTimeBatchWindow{attr: idx, t: t, keepExpired: keepExpired, startAttr: -1}
	if len(w.Args) >= 3 {
		ew.hasStart = true
		if v, ok := w.Args[2].(*siddhiql.Variable); ok {
			if ew.startAttr, err = longAttrArg(v, fields, w.Name, "start.time"); err != nil {
				return nil, err
			}
		} else {
			c, err := constArg(w.Args[2], fields, w.Name, "start.time")
			if err != nil {
				return nil, err
			}
			if c.T != siddhiql.TypeInt && c.T != siddhiql.TypeLong {
				return nil, errAt(w.Args[2].Position(), "window %s: start.time must be an int or long constant or a long attribute, got %s", w.Name, c.T)
			}
			ew.start = c.I
		}
	}
	if len(w.Args) >= 4 {
		v, err := constArg(w.Args[3], fields, w.Name, "timeout")
		if err != nil {
			return nil, err
		}
		if (v.T != siddhiql.TypeInt && v.T != siddhiql.TypeLong) || v.I < 0 {
			return nil, errAt(w.Args[3].Position(), "window %s: timeout must be a non-negative int, long or time constant, got %s", w.Name, v)
		}
		ew.timeout = v.I
	}
	if len(w.Args) == 5 {
		if ew.replace, err = boolArg(w.Args[4], fields, w.Name, "replace.with.batchtime"); err != nil {
			return nil, err
		}
	}
	return ew, nil
}
