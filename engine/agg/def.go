package agg

import (
	"fmt"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// BaseKind is how a base column merges.
type BaseKind uint8

// Base column kinds, as Siddhi's incremental aggregators store them.
const (
	BaseSum BaseKind = iota
	BaseCount
	BaseMin
	BaseMax
	BaseSet // distinctCount: a set of values
)

// Base is one base column of an aggregation's tables (AGG_SUM_x, AGG_COUNT, AGG_MIN_x,
// AGG_MAX_x, AGG_SET_x). Bases are shared: avg(price) and sum(price) use one AGG_SUM_price.
type Base struct {
	Name string // column name
	Kind BaseKind
	// Attr is the input attribute's position in the stream (-1 for count).
	Attr int
	// Type is the column type: sums of int/long are long, of float/double double; count is
	// long; min/max keep the input type; sets are object.
	Type siddhiql.Type
}

// OutputKind says how an output column of the aggregation is computed.
type OutputKind uint8

// Output column kinds.
const (
	OutGroup  OutputKind = iota // a group-by attribute
	OutLatest                   // a non-aggregate expression: the latest event's value
	OutSum
	OutCount
	OutAvg
	OutMin
	OutMax
	OutDistinct
)

// Output is one column of the aggregation's select list.
type Output struct {
	Name string
	Type siddhiql.Type
	Kind OutputKind
	// Index is the group-by position (OutGroup), latest position (OutLatest) or base
	// position (others; OutAvg uses Index for the sum and Count for the count).
	Index int
	Count int
}

// Column is a named, typed column.
type Column struct {
	Name string
	Type siddhiql.Type
	// Length is how many characters a string column of the aggregation's tables holds
	// (@store field.length, else DefaultStringLength); 0 for other types.
	Length int
}

// Def is a compiled `define aggregation`.
type Def struct {
	Name      string
	Stream    string
	Durations []siddhiql.Duration
	// EventTime is set in event-time mode (`aggregate by attr`); TimeAttr is attr's
	// position and TimeType its type (long or string).
	EventTime bool
	TimeAttr  int
	TimeType  siddhiql.Type
	// GroupBy are the group-by columns; groupAttrs their input positions.
	GroupBy    []Column
	groupAttrs []int
	// Latest are the non-aggregate select expressions, kept as the latest event's value.
	Latest     []Column
	latestExpr []expr.Eval
	Bases      []Base
	Outputs    []Output
	Filter     expr.Eval // nil when the aggregation has no filter
	Purge      siddhiql.Purge
	// PartitionByID is the @PartitionById flag (rows carry SHARD_ID).
	PartitionByID bool
	// ShardLength is how many characters SHARD_ID holds (field.length of SHARD_ID).
	ShardLength int
	// countBase is the position of AGG_COUNT in Bases, or -1.
	countBase int
}

// HasDuration reports whether the aggregation keeps granularity d.
func (d *Def) HasDuration(g siddhiql.Duration) bool {
	for _, x := range d.Durations {
		if x == g {
			return true
		}
	}
	return false
}

// Compile checks an aggregation definition against its input stream.
func Compile(a *siddhiql.AggregationDef, in *siddhiql.StreamDef) (*Def, error) {
	return CompileEnv(a, in, nil)
}

// CompileEnv is Compile for an aggregation whose functions read env (the stamped time,
// the GeoIP database).
func CompileEnv(a *siddhiql.AggregationDef, in *siddhiql.StreamDef, env *expr.Env) (*Def, error) {
	fields := &expr.Fields{Stream: in.Name, Attrs: in.Attributes, Env: env}
	d := &Def{Name: a.Name, Stream: in.Name, Durations: a.Durations, PartitionByID: a.PartitionByID, countBase: -1}
	if len(d.Durations) == 0 {
		return nil, &siddhiql.Error{Pos: a.Pos, Msg: fmt.Sprintf("aggregation %s has no durations", a.Name)}
	}
	if a.Purge != nil {
		d.Purge = *a.Purge
	}
	if a.Filter != nil {
		c, err := expr.Compile(a.Filter, fields)
		if err != nil {
			return nil, err
		}
		if c.Type != siddhiql.TypeBool {
			return nil, expr.Errorf(a.Filter, "filter of aggregation %s must be a bool, got %s", a.Name, c.Type)
		}
		d.Filter = c.Eval
	}
	if a.AggregateBy != "" {
		i := fields.Index(a.AggregateBy)
		if i < 0 {
			return nil, &siddhiql.Error{Pos: a.Pos, Msg: fmt.Sprintf("aggregate by %q: stream %s has no such attribute", a.AggregateBy, in.Name)}
		}
		t := in.Attributes[i].Type
		if t != siddhiql.TypeLong && t != siddhiql.TypeString {
			return nil, &siddhiql.Error{Pos: a.Pos, Msg: fmt.Sprintf("aggregate by %q: the attribute must be a long (epoch ms) or a string time, not %s", a.AggregateBy, t)}
		}
		d.EventTime, d.TimeAttr, d.TimeType = true, i, t
	}
	for _, g := range a.GroupBy {
		i, t, err := fields.Var(g)
		if err != nil {
			return nil, err
		}
		d.GroupBy = append(d.GroupBy, Column{Name: g.Name, Type: t})
		d.groupAttrs = append(d.groupAttrs, i)
	}
	seen := map[string]bool{}
	for _, o := range a.Select {
		name := o.OutputName()
		if name == "" {
			return nil, &siddhiql.Error{Pos: o.Pos, Msg: "select expression needs 'as <name>'"}
		}
		if seen[name] {
			return nil, &siddhiql.Error{Pos: o.Pos, Msg: fmt.Sprintf("output name %q is used twice", name)}
		}
		seen[name] = true
		out, err := d.compileOutput(o, name, fields)
		if err != nil {
			return nil, err
		}
		d.Outputs = append(d.Outputs, out)
	}
	d.applyFieldLengths(a)
	return d, nil
}

func (d *Def) compileOutput(o siddhiql.OutputAttr, name string, fields *expr.Fields) (Output, error) {
	if v, ok := o.Expr.(*siddhiql.Variable); ok {
		for i, g := range d.GroupBy {
			if g.Name == v.Name {
				return Output{Name: name, Type: g.Type, Kind: OutGroup, Index: i}, nil
			}
		}
	}
	call, ok := o.Expr.(*siddhiql.Call)
	if !ok || !expr.IsAggregate(call) {
		c, err := expr.Compile(o.Expr, fields)
		if err != nil {
			return Output{}, err
		}
		d.Latest = append(d.Latest, Column{Name: name, Type: c.Type})
		d.latestExpr = append(d.latestExpr, c.Eval)
		return Output{Name: name, Type: c.Type, Kind: OutLatest, Index: len(d.Latest) - 1}, nil
	}
	fn := strings.ToLower(call.Name)
	if fn == "count" {
		// count(x) is count(), as in Siddhi.
		return Output{Name: name, Type: siddhiql.TypeLong, Kind: OutCount, Index: d.base(BaseCount, -1, siddhiql.TypeLong, "")}, nil
	}
	if len(call.Args) != 1 {
		return Output{}, expr.Errorf(call, "%s() takes exactly one attribute, got %d arguments", call.Name, len(call.Args))
	}
	v, ok := call.Args[0].(*siddhiql.Variable)
	if !ok {
		return Output{}, expr.Errorf(call.Args[0], "%s() in an aggregation takes an attribute, not an expression", call.Name)
	}
	attr, t, err := fields.Var(v)
	if err != nil {
		return Output{}, err
	}
	if fn != "distinctcount" && !t.Numeric() {
		return Output{}, expr.Errorf(v, "%s(%s) needs a numeric attribute, %s is %s", call.Name, v.Name, v.Name, t)
	}
	sumType := siddhiql.TypeLong
	if t == siddhiql.TypeFloat || t == siddhiql.TypeDouble {
		sumType = siddhiql.TypeDouble
	}
	switch fn {
	case "sum":
		return Output{Name: name, Type: sumType, Kind: OutSum, Index: d.base(BaseSum, attr, sumType, v.Name)}, nil
	case "avg":
		s := d.base(BaseSum, attr, sumType, v.Name)
		c := d.base(BaseCount, -1, siddhiql.TypeLong, "")
		return Output{Name: name, Type: siddhiql.TypeDouble, Kind: OutAvg, Index: s, Count: c}, nil
	case "min":
		return Output{Name: name, Type: t, Kind: OutMin, Index: d.base(BaseMin, attr, t, v.Name)}, nil
	case "max":
		return Output{Name: name, Type: t, Kind: OutMax, Index: d.base(BaseMax, attr, t, v.Name)}, nil
	default: // distinctcount
		return Output{Name: name, Type: siddhiql.TypeLong, Kind: OutDistinct, Index: d.base(BaseSet, attr, siddhiql.TypeObject, v.Name)}, nil
	}
}

var basePrefix = [...]string{BaseSum: "AGG_SUM_", BaseCount: "AGG_COUNT", BaseMin: "AGG_MIN_", BaseMax: "AGG_MAX_", BaseSet: "AGG_SET_"}

// base returns the position of a base column, adding it on first use.
func (d *Def) base(k BaseKind, attr int, t siddhiql.Type, attrName string) int {
	for i, b := range d.Bases {
		if b.Kind == k && b.Attr == attr {
			return i
		}
	}
	name := basePrefix[k]
	if k != BaseCount {
		name += attrName
	}
	d.Bases = append(d.Bases, Base{Name: name, Kind: k, Attr: attr, Type: t})
	if k == BaseCount {
		d.countBase = len(d.Bases) - 1
	}
	return len(d.Bases) - 1
}

// HasLastEventTimestamp reports whether rows carry AGG_LAST_EVENT_TIMESTAMP (they do when
// the aggregation has latest-value columns).
func (d *Def) HasLastEventTimestamp() bool { return len(d.Latest) > 0 }
